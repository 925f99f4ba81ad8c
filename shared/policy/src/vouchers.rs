//! 职业培训券: voucher codes, eligibility (VO-CLASS, VO-CARD, VO-YEAR, VO-SAME),
//! amounts (VO-AMOUNT), and the lifecycle (VO-FLOW, VO-VALID).
//!
//! Everything here is pure. The caller reads the class, the card status and
//! the person's ledger of earlier vouchers from the store, and gets back an
//! explained [`Decision`]. The subsidy catalogue is dated data in
//! `data/subsidies.toml` ([`Subsidies`]).
//!
//! A [`VoucherCode`] is 19 random symbols (95 bits) and one check symbol over a
//! 32-symbol alphabet without `0 O 1 I`, written in groups of four
//! (`7KQM-4XRA-BT9C-ZW2H-N5FD`) so it can be read over the phone; the check
//! symbol (Luhn mod 32) tells a mistyped code from an unknown one.

use crate::decision::{Decision, Finding};
use crate::ids::{OccupationCode, SkillLevel};
use crate::params::{Parameters, names};
use crate::reference::{Certificate, FundSource, TargetGroup};
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The rules of this module with their severity and source (POLICY.md).
pub mod rules {
    #![allow(missing_docs)]
    use crate::decision::{Rule, Severity::*};
    pub const VO_CLASS: Rule = Rule {
        id: "VO-CLASS",
        severity: Block,
        source: "plan 二(三)8",
    };
    pub const VO_CARD: Rule = Rule {
        id: "VO-CARD",
        severity: Block,
        source: "plan 二(三)8",
    };
    pub const VO_YEAR: Rule = Rule {
        id: "VO-YEAR",
        severity: Block,
        source: "national 2019 action plan, [other]",
    };
    pub const VO_SAME: Rule = Rule {
        id: "VO-SAME",
        severity: Block,
        source: "[other]",
    };
    pub const VO_AMOUNT: Rule = Rule {
        id: "VO-AMOUNT",
        severity: Block,
        source: "Yunnan catalogue, [open]",
    };
    pub const VO_VALID: Rule = Rule {
        id: "VO-VALID",
        severity: Block,
        source: "[other]",
    };
    pub const VO_FLOW: Rule = Rule {
        id: "VO-FLOW",
        severity: Block,
        source: "[other]",
    };
    pub const VO_OPEN: Rule = Rule {
        id: "VO-OPEN",
        severity: Block,
        source: "plan 二(三)8, 四.2",
    };
    pub const VO_ENDED: Rule = Rule {
        id: "VO-ENDED",
        severity: Block,
        source: "plan 二(三)8 (settled after the assessment)",
    };
    pub const VO_CALLS: Rule = Rule {
        id: "VO-CALLS",
        severity: Block,
        source: "plan 四.2, 四.3",
    };
    pub const VO_4EYES: Rule = Rule {
        id: "VO-4EYES",
        severity: Block,
        source: "segregation of duties, [open]",
    };
    pub const SC_DENY: Rule = Rule {
        id: "SC-DENY",
        severity: Block,
        source: "plan 四.2, 四.3",
    };

    /// Every rule [`super::decide_issue`] checks.
    pub const ISSUE: &[Rule] = &[VO_CLASS, VO_CARD, VO_YEAR, VO_SAME, VO_AMOUNT];
}

// ---------------------------------------------------------------------------
// Codes

/// The code alphabet: digits and capital letters without `0`, `O`, `1` and `I`.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Random symbols in a code (19 × 5 = 95 bits).
pub const RANDOM_SYMBOLS: usize = 19;
/// Symbols in a code, the check symbol included.
pub const CODE_SYMBOLS: usize = RANDOM_SYMBOLS + 1;
/// Random bytes [`VoucherCode::from_random`] takes.
pub const RANDOM_BYTES: usize = 12;
/// Prefix of the QR payload.
pub const QR_PREFIX: &str = "KMVT1:";

/// Why a code did not parse. Messages never repeat the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Wrong number of symbols once separators are removed.
    #[error("a voucher code has {expected} characters, got {actual}")]
    Length {
        /// Symbols required.
        expected: usize,
        /// Symbols given.
        actual: usize,
    },
    /// A character outside the alphabet (`0`, `O`, `1`, `I` are never used).
    #[error("character {position} is not used in voucher codes")]
    Character {
        /// 1-based position among the symbols.
        position: usize,
    },
    /// The check symbol does not match: the code was mistyped.
    #[error("the check character does not match: the code was mistyped")]
    CheckCharacter,
}

fn symbol_value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|a| *a == c).map(|p| p as u32)
}

/// The Luhn mod 32 check symbol of `values` (each 0..32).
fn luhn_check(values: &[u32]) -> u32 {
    let n = ALPHABET.len() as u32;
    let mut factor = 2;
    let mut sum = 0;
    for v in values.iter().rev() {
        let addend = factor * v;
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / n + addend % n;
    }
    (n - sum % n) % n
}

/// A voucher code (职业培训券编号): 20 symbols, the last a check symbol.
///
/// ```
/// use policy::vouchers::VoucherCode;
/// let code = VoucherCode::from_random(&[7; 12]);
/// let typed = code.grouped().to_lowercase().replace('-', " ");
/// assert_eq!(VoucherCode::parse(&typed).unwrap(), code);
/// assert_eq!(VoucherCode::parse(&code.qr_payload()).unwrap(), code);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VoucherCode(String);

impl VoucherCode {
    /// A code from 12 random bytes (the first 95 bits are used).
    pub fn from_random(bytes: &[u8; RANDOM_BYTES]) -> Self {
        let mut acc: u128 = 0;
        for b in bytes {
            acc = (acc << 8) | u128::from(*b);
        }
        let values: Vec<u32> = (0..RANDOM_SYMBOLS)
            .map(|i| ((acc >> (91 - 5 * i)) & 31) as u32)
            .collect();
        let check = luhn_check(&values);
        let text = values
            .iter()
            .chain(std::iter::once(&check))
            .map(|v| ALPHABET[*v as usize] as char)
            .collect();
        Self(text)
    }

    /// Parses a code as typed or scanned: case, spaces, dashes and the QR prefix are ignored.
    pub fn parse(input: impl AsRef<str>) -> Result<Self, CodeError> {
        let s = input.as_ref().trim();
        let s = s
            .strip_prefix(QR_PREFIX)
            .or_else(|| s.strip_prefix(&QR_PREFIX.to_ascii_lowercase()))
            .unwrap_or(s);
        let compact: Vec<u8> = s
            .bytes()
            .filter(|b| !matches!(b, b' ' | b'-'))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        if compact.len() != CODE_SYMBOLS {
            return Err(CodeError::Length {
                expected: CODE_SYMBOLS,
                actual: s.chars().filter(|c| !matches!(c, ' ' | '-')).count(),
            });
        }
        let mut values = Vec::with_capacity(CODE_SYMBOLS);
        for (i, b) in compact.iter().enumerate() {
            values.push(symbol_value(*b).ok_or(CodeError::Character { position: i + 1 })?);
        }
        let (body, check) = values.split_at(RANDOM_SYMBOLS);
        if luhn_check(body) != check[0] {
            return Err(CodeError::CheckCharacter);
        }
        Ok(Self(String::from_utf8(compact).expect("ASCII")))
    }

    /// The 20 symbols without separators (used in keys and URLs).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Groups of four for reading aloud: `7KQM-4XRA-BT9C-ZW2H-N5FD`.
    pub fn grouped(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("ASCII"))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The string a QR code carries: `KMVT1:` and the compact code.
    pub fn qr_payload(&self) -> String {
        format!("{QR_PREFIX}{}", self.0)
    }
}

impl fmt::Debug for VoucherCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoucherCode({})", self.grouped())
    }
}

impl fmt::Display for VoucherCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

impl TryFrom<String> for VoucherCode {
    type Error = CodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<VoucherCode> for String {
    fn from(value: VoucherCode) -> Self {
        value.0
    }
}

// ---------------------------------------------------------------------------
// Subsidy catalogue

/// What a subsidy standard is for: an occupation at a level, an occupation
/// without a level (专项/合格证), or a programme-wide project (`syb`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubsidyKey {
    /// 职业技能等级/职业资格 training at a level.
    Level(OccupationCode, SkillLevel),
    /// Training in an occupation without a level.
    Occupation(OccupationCode),
    /// A project (for example `syb`).
    Project(String),
}

impl SubsidyKey {
    /// The key a class's vouchers are priced by: its project (SYB `syb`,
    /// 网络创业 `online_business`), or its occupation at its level, or its
    /// occupation alone. An entrepreneurship class filed before classes named
    /// their project is priced as SYB.
    pub fn for_class(
        occupation: Option<&OccupationCode>,
        project: Option<&str>,
        level: Option<SkillLevel>,
        certificate: Certificate,
    ) -> Self {
        match (project, occupation, certificate, level) {
            (Some(p), _, _, _) => Self::Project(p.to_string()),
            (None, _, Certificate::Entrepreneurship, _) | (None, None, _, _) => {
                Self::Project("syb".into())
            }
            (None, Some(o), _, Some(l)) => Self::Level(o.clone(), l),
            (None, Some(o), _, None) => Self::Occupation(o.clone()),
        }
    }

    /// A label such as `4-10-01-05/5` or `project:syb`.
    pub fn label(&self) -> String {
        match self {
            Self::Level(o, l) => format!("{o}/{}", l.number()),
            Self::Occupation(o) => o.to_string(),
            Self::Project(p) => format!("project:{p}"),
        }
    }
}

/// A group uplift of one subsidy entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplift {
    /// The group.
    pub group: TargetGroup,
    /// Added amount in fen.
    pub amount_fen: i64,
    /// Where it comes from.
    pub reference: String,
}

/// One dated subsidy standard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsidyEntry {
    /// Occupation, when keyed by occupation.
    #[serde(default)]
    pub occupation: Option<OccupationCode>,
    /// Level, when keyed by occupation and level.
    #[serde(default)]
    pub level: Option<SkillLevel>,
    /// Project, when keyed by project.
    #[serde(default)]
    pub project: Option<String>,
    /// First day it holds.
    pub since: NaiveDate,
    /// Base amount in fen.
    pub amount_fen: i64,
    /// Fund source when no group fund applies.
    pub fund: FundSource,
    /// Where it comes from (`[open]` for sample data).
    pub reference: String,
    /// Group uplifts.
    #[serde(default)]
    pub uplifts: Vec<Uplift>,
}

impl SubsidyEntry {
    /// The key of this entry.
    pub fn key(&self) -> Option<SubsidyKey> {
        match (&self.occupation, self.level, &self.project) {
            (Some(o), Some(l), None) => Some(SubsidyKey::Level(o.clone(), l)),
            (Some(o), None, None) => Some(SubsidyKey::Occupation(o.clone())),
            (None, None, Some(p)) => Some(SubsidyKey::Project(p.clone())),
            _ => None,
        }
    }
}

/// A group whose trainings are paid from a particular fund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFund {
    /// The group.
    pub group: TargetGroup,
    /// The fund.
    pub fund: FundSource,
    /// Where the mapping comes from.
    pub reference: String,
}

/// The subsidy catalogue (VO-AMOUNT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subsidies {
    /// Standards.
    pub subsidy: Vec<SubsidyEntry>,
    /// Group fund overrides.
    #[serde(default)]
    pub group_fund: Vec<GroupFund>,
}

#[cfg(test)]
const SHIPPED_SUBSIDIES: &str = include_str!("../data/subsidies.toml");

impl Subsidies {
    /// The catalogue shipped with this build.
    pub fn shipped() -> &'static Subsidies {
        &crate::data::PolicyData::shipped().subsidies
    }

    /// Parses a catalogue; every entry must have exactly one kind of key and a non-negative amount.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        Self::checked(toml::from_str(text).map_err(|e| e.to_string())?)
    }

    fn checked(s: Subsidies) -> Result<Self, String> {
        for (i, e) in s.subsidy.iter().enumerate() {
            if e.key().is_none() {
                return Err(format!(
                    "subsidy[{i}] needs occupation (and level) or project"
                ));
            }
            if e.amount_fen < 0 || e.uplifts.iter().any(|u| u.amount_fen < 0) {
                return Err(format!("subsidy[{i}] has a negative amount"));
            }
        }
        Ok(s)
    }

    /// Checks one entry against the occupation catalogue: exactly one kind
    /// of key, an occupation of the catalogue trained at the level given, a
    /// project id of 1 to 32 `a-z`, `0-9` or `_`, a date in
    /// [`crate::params::since_bounds`], amounts of 0 to 100,000,000 fen (a
    /// negative amount is refused), each group uplifted once, references filled.
    pub fn check_entry(
        e: &SubsidyEntry,
        catalogue: &crate::Catalogue,
    ) -> Result<(), Vec<crate::data::FieldError>> {
        use crate::data::FieldError;
        let mut errs = Vec::new();
        match (&e.occupation, e.level, &e.project) {
            (Some(o), level, None) => match catalogue.occupation(o) {
                None => errs.push(FieldError::new(
                    "occupation",
                    "not an occupation of the catalogue (REF-OCC)",
                )),
                Some(occ) => {
                    if let Some(l) = level
                        && !occ.trains(l)
                    {
                        errs.push(FieldError::new(
                            "level",
                            format!("the occupation is not trained at level {}", l.number()),
                        ));
                    }
                }
            },
            (None, None, Some(p)) => {
                let ok = !p.is_empty()
                    && p.len() <= 32
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    errs.push(FieldError::new(
                        "project",
                        "1 to 32 characters a-z, 0-9 or _",
                    ));
                } else if !catalogue.has_project(p) {
                    errs.push(FieldError::new("project", "not a project of the catalogue"));
                }
            }
            (None, Some(_), _) => {
                errs.push(FieldError::new("level", "a level needs an occupation"))
            }
            _ => errs.push(FieldError::new(
                "project",
                "give occupation (and level) or project, not both",
            )),
        }
        let (first, last) = crate::params::since_bounds();
        if e.since < first || e.since > last {
            errs.push(FieldError::new(
                "since",
                format!("must lie between {first} and {last}"),
            ));
        }
        const MAX_FEN: i64 = 100_000_000;
        if !(0..=MAX_FEN).contains(&e.amount_fen) {
            errs.push(FieldError::new(
                "amount_fen",
                format!("an amount in fen from 0 to {MAX_FEN}, never negative"),
            ));
        }
        if !crate::text::filled(&e.reference, 300) {
            errs.push(FieldError::new(
                "reference",
                "must be 1 to 300 characters, not all blank",
            ));
        }
        for (i, u) in e.uplifts.iter().enumerate() {
            if !(0..=MAX_FEN).contains(&u.amount_fen) {
                errs.push(FieldError::new(
                    format!("uplifts[{i}].amount_fen"),
                    format!("an amount in fen from 0 to {MAX_FEN}, never negative"),
                ));
            }
            if e.uplifts[..i].iter().any(|x| x.group == u.group) {
                errs.push(FieldError::new(
                    format!("uplifts[{i}].group"),
                    "each group is uplifted once",
                ));
            }
            if !crate::text::filled(&u.reference, 300) {
                errs.push(FieldError::new(
                    format!("uplifts[{i}].reference"),
                    "must be 1 to 300 characters, not all blank",
                ));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The catalogue with `entry` added, replacing an entry with the same
    /// key and `since`.
    pub fn with_entry(&self, entry: SubsidyEntry) -> Subsidies {
        let mut next = self.clone();
        let key = entry.key();
        next.subsidy
            .retain(|e| !(e.key() == key && e.since == entry.since));
        next.subsidy.push(entry);
        next
    }

    /// Every entry checked ([`Subsidies::check_entry`]).
    pub fn check(&self, catalogue: &crate::Catalogue) -> Result<(), Vec<crate::data::FieldError>> {
        let mut errs = Vec::new();
        for (i, e) in self.subsidy.iter().enumerate() {
            if let Err(x) = Self::check_entry(e, catalogue) {
                errs.extend(x.into_iter().map(|x| x.under(&format!("subsidy[{i}]"))));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The entry for `key` in force on `date`.
    pub fn at(&self, key: &SubsidyKey, date: NaiveDate) -> Option<&SubsidyEntry> {
        self.subsidy
            .iter()
            .filter(|e| e.key().as_ref() == Some(key) && e.since <= date)
            .max_by_key(|e| e.since)
    }
}

/// A voucher's amount and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// Total in fen.
    pub fen: i64,
    /// Base amount in fen.
    pub base_fen: i64,
    /// Group uplift in fen.
    pub uplift_fen: i64,
    /// Fund source (REF-FUND).
    pub fund: FundSource,
    /// The catalogue entry as `key@since`.
    pub basis: String,
    /// The entry's reference (and the uplift's, when one applied).
    pub reference: String,
}

/// VO-AMOUNT: the amount for `key` and `group` on `date`, with its finding.
pub fn amount(
    subsidies: &Subsidies,
    key: &SubsidyKey,
    group: TargetGroup,
    date: NaiveDate,
) -> (Finding, Option<Amount>) {
    let r = rules::VO_AMOUNT;
    let Some(entry) = subsidies.at(key, date) else {
        return (
            r.fail(
                format!("补贴目录中没有“{}”在{date}有效的补贴标准", key.label()),
                format!(
                    "the subsidy catalogue has no standard for {} on {date}",
                    key.label()
                ),
            )
            .field("class.occupation"),
            None,
        );
    };
    let uplift = entry.uplifts.iter().find(|u| u.group == group);
    let uplift_fen = uplift.map(|u| u.amount_fen).unwrap_or(0);
    let fund = subsidies
        .group_fund
        .iter()
        .find(|g| g.group == group)
        .map(|g| g.fund)
        .unwrap_or(entry.fund);
    let basis = format!("{}@{}", key.label(), entry.since);
    let mut reference = entry.reference.clone();
    if let Some(u) = uplift {
        reference = format!("{reference}; {}", u.reference);
    }
    let a = Amount {
        fen: entry.amount_fen + uplift_fen,
        base_fen: entry.amount_fen,
        uplift_fen,
        fund,
        basis: basis.clone(),
        reference,
    };
    let mut f = r
        .pass(
            format!(
                "补贴标准 {} 分（基础 {} 分，群体加补 {} 分），资金来源：{}",
                a.fen,
                a.base_fen,
                a.uplift_fen,
                fund.name_zh()
            ),
            format!(
                "amount {} fen (base {}, group uplift {}), fund {}",
                a.fen,
                a.base_fen,
                a.uplift_fen,
                fund.id()
            ),
        )
        .compare(
            "amount_fen",
            a.fen,
            "=",
            format!("{} + {}", a.base_fen, a.uplift_fen),
        );
    f.parameters.push(basis);
    (f, Some(a))
}

// ---------------------------------------------------------------------------
// Lifecycle

/// Where a voucher is in its life (VO-FLOW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherState {
    /// 已发放.
    Issued,
    /// 已使用: the trainee started the class.
    Redeemed,
    /// 已结算: paid, once.
    Settled,
    /// 已撤销.
    Revoked,
    /// 已过期: not redeemed in time (VO-VALID).
    Expired,
}

impl VoucherState {
    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Issued => "已发放",
            Self::Redeemed => "已使用",
            Self::Settled => "已结算",
            Self::Revoked => "已撤销",
            Self::Expired => "已过期",
        }
    }

    /// The `snake_case` name.
    pub fn id(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Redeemed => "redeemed",
            Self::Settled => "settled",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// Whether the voucher counts as a subsidised training (VO-YEAR, VO-SAME): live or settled.
    pub fn counts(self) -> bool {
        matches!(self, Self::Issued | Self::Redeemed | Self::Settled)
    }

    /// Whether no further move is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Settled | Self::Revoked | Self::Expired)
    }
}

/// A move of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The trainee starts the class.
    Redeem,
    /// The institution is paid.
    Settle,
    /// Withdrawn with a reason.
    Revoke,
    /// Not redeemed in time.
    Expire,
}

impl Action {
    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Redeem => "使用",
            Self::Settle => "结算",
            Self::Revoke => "撤销",
            Self::Expire => "过期",
        }
    }

    /// The `snake_case` name.
    pub fn id(self) -> &'static str {
        match self {
            Self::Redeem => "redeem",
            Self::Settle => "settle",
            Self::Revoke => "revoke",
            Self::Expire => "expire",
        }
    }
}

/// A move VO-FLOW or VO-VALID does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The voucher is not in a state the move starts from (VO-FLOW).
    #[error("VO-FLOW: a voucher in state {state:?} cannot be {action:?}d")]
    IllegalMove {
        /// Current state.
        state: VoucherState,
        /// The move asked for.
        action: Action,
    },
    /// Redemption after the last valid day (VO-VALID).
    #[error("VO-VALID: the voucher expired after {last_valid_day}")]
    Expired {
        /// Last day it could be redeemed.
        last_valid_day: NaiveDate,
    },
}

impl FlowError {
    /// The rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::IllegalMove { .. } => rules::VO_FLOW.id,
            Self::Expired { .. } => rules::VO_VALID.id,
        }
    }
}

/// VO-FLOW: the state after `action` from `state`, or why not.
pub fn transition(state: VoucherState, action: Action) -> Result<VoucherState, FlowError> {
    use Action::*;
    use VoucherState::*;
    match (state, action) {
        (Issued, Redeem) => Ok(Redeemed),
        (Redeemed, Settle) => Ok(Settled),
        (Issued | Redeemed, Revoke) => Ok(Revoked),
        (Issued, Expire) => Ok(Expired),
        _ => Err(FlowError::IllegalMove { state, action }),
    }
}

/// VO-VALID: the last day a voucher issued on `issued_on` may be redeemed.
pub fn last_valid_day(issued_on: NaiveDate, params: &Parameters) -> NaiveDate {
    let months = params
        .at_or_first(names::VO_VALID_MONTHS, issued_on)
        .value
        .clamp(0, 1200) as u32;
    issued_on
        .checked_add_months(Months::new(months))
        .and_then(|d| d.pred_opt())
        .unwrap_or(NaiveDate::MAX)
}

/// VO-ISSUE-LEASE: how long, from winning a voucher's ledger entry on
/// `issued_on`, the winning request alone may write the voucher's record and
/// its `voucher.issued` event. Until it ends every other request waits; after
/// it, one other request may take the lease over and finish the issue.
pub fn issue_lease(issued_on: NaiveDate, params: &Parameters) -> chrono::Duration {
    let seconds = params
        .at_or_first(names::VO_ISSUE_LEASE_SECONDS, issued_on)
        .value
        .clamp(1, 86_400);
    chrono::Duration::seconds(seconds)
}

/// The state as of `today`: an issued voucher past its last valid day is expired (VO-VALID).
pub fn effective_state(
    state: VoucherState,
    last_valid_day: NaiveDate,
    today: NaiveDate,
) -> VoucherState {
    if state == VoucherState::Issued && today > last_valid_day {
        VoucherState::Expired
    } else {
        state
    }
}

/// VO-FLOW and VO-VALID: redemption on `today`.
pub fn redeem(
    state: VoucherState,
    last_valid_day: NaiveDate,
    today: NaiveDate,
) -> Result<VoucherState, FlowError> {
    if state == VoucherState::Issued && today > last_valid_day {
        return Err(FlowError::Expired { last_valid_day });
    }
    transition(state, Action::Redeem)
}

// ---------------------------------------------------------------------------
// Eligibility

/// A subsidised training the person already has (from their ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Its voucher code.
    pub code: String,
    /// The class.
    pub class_id: String,
    /// What it is priced by (occupation and level, or project).
    pub key: SubsidyKey,
    /// Issue date.
    pub issued_on: NaiveDate,
    /// The class's first day (the training's legal date, VO-YEAR). `None` on
    /// ledger entries written before it was recorded: those count by their
    /// issue date instead (see [`Held::training_day`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_day: Option<NaiveDate>,
    /// Last valid day.
    pub last_valid_day: NaiveDate,
    /// State as recorded.
    pub state: VoucherState,
}

impl Held {
    fn counts_on(&self, today: NaiveDate) -> bool {
        effective_state(self.state, self.last_valid_day, today).counts()
    }

    /// The day VO-YEAR dates this training by: the class's first day, or, for
    /// an entry recorded before first days were kept, its issue date (the
    /// rule as it was; such entries are all issued before their class began,
    /// so at worst they count in the year before their class's).
    pub fn training_day(&self) -> NaiveDate {
        self.first_day.unwrap_or(self.issued_on)
    }
}

/// What an issue is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueFacts<'a> {
    /// The class id.
    pub class_id: &'a str,
    /// Whether the class is approved or in training and its last class day not past.
    pub class_approved: bool,
    /// Whether the class leads to a subsidised certificate kind.
    pub subsidised_kind: bool,
    /// Whether the person is on the class's roster.
    pub on_roster: bool,
    /// The roster line, for field paths.
    pub roster_line: usize,
    /// What the voucher is priced by.
    pub key: SubsidyKey,
    /// The trainee's target group.
    pub group: TargetGroup,
    /// Card status: `Some(true)` activated, `Some(false)` known and not activated, `None` unknown.
    pub card_active: Option<bool>,
    /// The person's earlier vouchers.
    pub held: &'a [Held],
    /// Issue date (VO-VALID and VO-SAME's reading of earlier vouchers).
    pub today: NaiveDate,
    /// The class's first day: the training's legal date, whose calendar year
    /// VO-YEAR counts in (as the progress counters do).
    pub first_day: NaiveDate,
}

/// An issue decision with its amount when approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueDecision {
    /// The decision.
    pub decision: Decision,
    /// The amount (VO-AMOUNT) when the catalogue has one.
    pub amount: Option<Amount>,
    /// Last valid day of a voucher issued today.
    pub last_valid_day: NaiveDate,
}

/// Whether `certificate` is of a subsidised kind: every certificate of REF-PROGRAM's classes is.
pub fn subsidised(certificate: Certificate) -> bool {
    matches!(
        certificate,
        Certificate::VocationalQualification
            | Certificate::SkillLevel
            | Certificate::TrainingCompletion
            | Certificate::Entrepreneurship
    )
}

/// VO-CLASS, VO-CARD, VO-YEAR, VO-SAME and VO-AMOUNT for one trainee.
pub fn decide_issue(
    f: &IssueFacts<'_>,
    params: &Parameters,
    subsidies: &Subsidies,
) -> IssueDecision {
    let line = format!("roster[{}]", f.roster_line);
    let mut findings = Vec::new();

    let r = rules::VO_CLASS;
    findings.push(if !f.on_roster {
        r.fail(
            "该人员不在班级花名册上",
            "the person is not on the class's roster",
        )
        .field(line.clone())
    } else if !f.class_approved {
        r.fail(
            format!("班级 {} 未获批准或培训已结束，不能发券", f.class_id),
            format!(
                "class {} is not approved or has finished; no voucher is issued",
                f.class_id
            ),
        )
        .field("class.status")
    } else if !f.subsidised_kind {
        r.fail(
            "该班级不属于补贴类培训",
            "the class is not of a subsidised kind",
        )
        .field("class.certificate")
    } else {
        r.pass(
            "花名册上的学员，班级已获批准",
            "a trainee on the roster of an approved class",
        )
    });

    let r = rules::VO_CARD;
    findings.push(match f.card_active {
        Some(true) => r.pass(
            "电子社保卡已激活",
            "the electronic social security card is activated",
        ),
        Some(false) => r
            .fail(
                "电子社保卡未激活，培训券与终身档案须挂在社保卡上",
                "the electronic social security card is not activated",
            )
            .field(line.clone()),
        None => r
            .fail(
                "没有该学员的电子社保卡激活记录",
                "no activation of the electronic social security card is on record",
            )
            .field(line.clone()),
    });

    // VO-YEAR: trainings are dated by their class's first day, as progress
    // counts them, not by the day the voucher was issued.
    let year = f.first_day.year();
    let max = params.at_or_first(names::VO_MAX_PER_YEAR, f.first_day);
    let this_year: Vec<&Held> = f
        .held
        .iter()
        .filter(|h| {
            h.training_day().year() == year && h.counts_on(f.today) && h.class_id != f.class_id
        })
        .collect();
    let n = this_year.len() as i64 + 1;
    let r = rules::VO_YEAR;
    findings.push(if n <= max.value {
        r.pass(
            format!(
                "按开班首日计，{year} 年第 {n} 次补贴性培训，上限 {} 次",
                max.value
            ),
            format!(
                "subsidised training {n} of at most {} in {year}, the calendar year of the class's first day",
                max.value
            ),
        )
        .compare("trainings_in_year", n, "≤", max.value)
        .cite(&max)
    } else {
        r.fail(
            format!(
                "按开班首日计，{year} 年已有 {} 次补贴性培训，达到上限 {} 次",
                n - 1,
                max.value
            ),
            format!(
                "{} subsidised trainings already in {year} (counted by each class's first day, as this class starts in {year}); at most {} a year",
                n - 1,
                max.value
            ),
        )
        .compare("trainings_in_year", n, ">", max.value)
        .cite(&max)
        .field(line.clone())
    });

    let r = rules::VO_SAME;
    let same = f
        .held
        .iter()
        .filter(|h| h.counts_on(f.today))
        .find_map(|h| same_or_higher(&h.key, &f.key).map(|why| (h, why)));
    findings.push(match same {
        None => r.pass(
            "此前未享受同职业同等级或更高等级的补贴",
            "no subsidy for this occupation at this or a higher level before",
        ),
        Some((h, Same::Same)) if h.class_id == f.class_id => r
            .fail(
                format!("该学员在本班已有培训券 {}", h.code),
                format!("the trainee already has voucher {} for this class", h.code),
            )
            .field(line.clone()),
        Some((h, Same::Same)) => r
            .fail(
                format!("同一职业同一等级只补贴一次（已有班级 {} 的券）", h.class_id),
                format!(
                    "the same occupation at the same level is subsidised once (voucher of class {})",
                    h.class_id
                ),
            )
            .compare("held", h.key.label(), "=", f.key.label())
            .field(line.clone()),
        Some((h, Same::Higher)) => r
            .fail(
                "已享受该职业更高等级的补贴，不再补贴较低等级",
                "already subsidised at a higher level of this occupation; a lower level gets nothing",
            )
            .compare("held", h.key.label(), "above", f.key.label())
            .field(line.clone()),
    });

    let (finding, amount) = amount(subsidies, &f.key, f.group, f.today);
    findings.push(finding);

    IssueDecision {
        decision: Decision::from_findings(f.today, findings),
        amount,
        last_valid_day: last_valid_day(f.today, params),
    }
}

enum Same {
    Same,
    Higher,
}

/// Whether `held` is the same as `asked`, or the same occupation at a higher level.
fn same_or_higher(held: &SubsidyKey, asked: &SubsidyKey) -> Option<Same> {
    if held == asked {
        return Some(Same::Same);
    }
    match (held, asked) {
        (SubsidyKey::Level(ho, hl), SubsidyKey::Level(ao, al))
            if ho == ao && hl.is_higher_than(*al) =>
        {
            Some(Same::Higher)
        }
        _ => None,
    }
}

mod settlement;
pub use settlement::{SettleFacts, decide_settlement, may_redeem};

#[cfg(test)]
mod tests;
