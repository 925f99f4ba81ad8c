//! 职业培训券 in the store: voucher records, the per-person ledger that holds
//! invariant 1, card status, the lifelong training archive, and the progress counters.
//!
//! # Invariant 1 and the ledger
//!
//! Every voucher a person ever got is an entry of ONE record per person,
//! `person:<ref>:ledger`. Issuing is a compare-and-swap on that record whose
//! update function runs the VO-* eligibility decision (passed in by the caller,
//! so the rules stay in `policy`) against the entries it read: two concurrent
//! issues cannot both see a ledger without the other's voucher, so 100
//! concurrent issues for one person, occupation and level give one voucher.
//!
//! Spin's SQLite backend (and the e2e host) write a compare-and-swap whose
//! `current` found no value unconditionally; [`update_json`] therefore lets
//! one elected request create a record and the others swap it once it exists.
//! Records carry a `rev` counter so that a compare by value never mistakes a
//! rewritten record for an unchanged one.
//!
//! # Order of writes
//!
//! Issue: ledger entry (the decision point, with an issue lease,
//! VO-ISSUE-LEASE), then, by the lease holder only, indexes, the
//! `voucher.issued` event and last the voucher record, created only if absent
//! ([`create_json`]). A request that finds the entry without a record waits
//! for it; only once the lease has lapsed (the winner died) does one such
//! request take the lease over by compare-and-swap on the ledger and write
//! the record ([`issue`] returns it as existing). No path writes a voucher
//! record without reading it: creation is create-if-absent, every later write
//! a compare-and-swap ([`apply`], [`repair`], [`sweep`]). A move: voucher record (CAS),
//! ledger entry state, archive and progress (each idempotent, then flagged on
//! the voucher record), audit. A retried move on a voucher already moved
//! finishes the flags ([`repair`]).
//!
//! No key holds an ID number, a phone number or an openid: people are person
//! refs ([`crate::pii`]); WeChat bindings are in [`crate::wechat`].

use crate::audit::{self, Actor, Change};
use crate::index::{self, Position};
use crate::keys::PREFIX;
use crate::kv::KeyValue;
use crate::records::{
    StoreError, UpdateError, create_json, decode, get_json, put_json, update_json,
};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use policy::decision::{Decision, Outcome};
use policy::ids::{OccupationCode, SkillLevel};
use policy::reference::{Certificate, Programme, TargetGroup};
use policy::vouchers::{
    Action, Amount, Held, IssueDecision, SubsidyKey, VoucherCode, VoucherState,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// Keys

/// A voucher record.
pub fn voucher_key(code: &str) -> String {
    format!("{PREFIX}voucher:{code}")
}
/// A person's ledger of vouchers.
pub fn ledger_key(person: &str) -> String {
    format!("{PREFIX}person:{person}:ledger")
}
/// A person's lifelong training archive.
pub fn archive_key(person: &str) -> String {
    format!("{PREFIX}person:{person}:archive")
}
/// A person's electronic social security card status.
pub fn card_key(person: &str) -> String {
    format!("{PREFIX}card:{person}")
}
/// Progress of a year.
pub fn progress_key(year: i32) -> String {
    format!("{PREFIX}stats:progress:{year}")
}
/// Where a person's first 职业资格/职业技能等级 certificates of a year were
/// counted (REF-TARGET counts people, not trainings).
pub fn certified_key(year: i32, person: &str) -> String {
    format!("{PREFIX}stats:certified:{year}:{person}")
}
/// Index of a class's vouchers.
pub fn class_index(class_id: &str) -> String {
    format!("vouchers:class:{class_id}")
}
/// Index of every voucher, in issue order (the sweep walks it).
pub const ALL_INDEX: &str = "vouchers:all";

// ---------------------------------------------------------------------------
// Records

/// One move of a voucher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The move.
    pub action: Action,
    /// State before.
    pub from: VoucherState,
    /// State after.
    pub to: VoucherState,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Reason or certificate number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the class contributes to a voucher (copied at issue for the archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassFacts {
    /// Class id.
    pub class_id: String,
    /// Class title.
    pub title: String,
    /// Institution's credit code.
    pub institution: String,
    /// District code.
    pub district: String,
    /// Occupation (absent for a project class).
    pub occupation: Option<OccupationCode>,
    /// Training project (SYB `syb`, 网络创业 `online_business`), for a project class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Level, when the class leads to one.
    pub level: Option<SkillLevel>,
    /// What the class leads to.
    pub certificate: Certificate,
    /// Programme.
    pub programme: Programme,
    /// Scheduled class hours.
    pub hours: u32,
    /// First class day.
    pub start_date: NaiveDate,
    /// Last class day.
    pub end_date: NaiveDate,
}

/// A voucher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherRecord {
    /// The code (20 symbols, no separators).
    pub code: String,
    /// State as last written (see [`VoucherRecord::state_on`] for expiry on read).
    pub state: VoucherState,
    /// Person ref of the trainee.
    pub person: String,
    /// Roster line (0-based).
    pub roster_line: usize,
    /// The trainee's target group.
    pub group: TargetGroup,
    /// The class.
    pub class: ClassFacts,
    /// What it is priced by.
    pub key: SubsidyKey,
    /// Amount and fund (VO-AMOUNT).
    pub amount: Amount,
    /// Issue date (CST).
    pub issued_on: NaiveDate,
    /// Last day it may be redeemed (VO-VALID).
    pub last_valid_day: NaiveDate,
    /// When issued.
    pub issued_at: DateTime<Utc>,
    /// Who issued.
    pub issued_by: Actor,
    /// The eligibility decision.
    pub decision: Decision,
    /// Certificate number, once settled.
    #[serde(default)]
    pub certificate_no: Option<String>,
    /// Reason, once revoked.
    #[serde(default)]
    pub revoke_reason: Option<String>,
    /// Every move.
    #[serde(default)]
    pub history: Vec<Move>,
    /// Write counter.
    #[serde(default)]
    pub rev: u64,
    /// Whether the settlement is in the progress counters.
    #[serde(default)]
    pub counted: bool,
    /// Whether the final state is in the archive.
    #[serde(default)]
    pub archived: bool,
    /// Audit events written: 1 for the issue and one per move once all are in.
    #[serde(default)]
    pub audited: usize,
}

impl VoucherRecord {
    /// The state on `today`, with VO-VALID expiry applied on read.
    pub fn state_on(&self, today: NaiveDate) -> VoucherState {
        policy::vouchers::effective_state(self.state, self.last_valid_day, today)
    }

    /// The parsed code.
    pub fn voucher_code(&self) -> Option<VoucherCode> {
        VoucherCode::parse(&self.code).ok()
    }

    fn needs_repair(&self) -> bool {
        self.audited < 1 + self.history.len()
            || (self.state == VoucherState::Settled && !self.counted)
            || (matches!(self.state, VoucherState::Settled | VoucherState::Revoked)
                && !self.archived)
    }
}

/// One voucher in a person's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Voucher code.
    pub code: String,
    /// Class.
    pub class_id: String,
    /// Roster line.
    pub roster_line: usize,
    /// What it is priced by.
    pub key: SubsidyKey,
    /// Issue date.
    pub issued_on: NaiveDate,
    /// Last valid day.
    pub last_valid_day: NaiveDate,
    /// State as last written.
    pub state: VoucherState,
    /// The class's first day, which VO-YEAR dates the training by. Entries
    /// written before it was kept have none (serde default) and count by
    /// their issue date instead ([`Held::training_day`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_day: Option<NaiveDate>,
    /// Until when the request holding this entry's issue lease alone may write
    /// the voucher's record and its `voucher.issued` event (VO-ISSUE-LEASE).
    /// Set by the request that wins the entry, moved on by the one request
    /// that takes a lapsed lease over (compare-and-swap on this ledger).
    /// Entries written before leases have none: their lease counts as lapsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
}

impl LedgerEntry {
    /// As the eligibility rules see it.
    pub fn held(&self) -> Held {
        Held {
            code: self.code.clone(),
            class_id: self.class_id.clone(),
            key: self.key.clone(),
            issued_on: self.issued_on,
            first_day: self.first_day,
            last_valid_day: self.last_valid_day,
            state: self.state,
        }
    }

    /// Whether the issue lease still holds at `t` (it holds strictly before `lease_until`).
    pub fn leased_at(&self, t: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| t < until)
    }
}

/// A person's vouchers: the one record issuing compares and swaps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Write counter.
    pub rev: u64,
    /// Every voucher, oldest first.
    pub entries: Vec<LedgerEntry>,
}

impl Ledger {
    /// The entries as the eligibility rules see them.
    pub fn held(&self) -> Vec<Held> {
        self.entries.iter().map(LedgerEntry::held).collect()
    }
}

/// One training in the lifelong archive (VO-ARCHIVE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    /// Voucher code.
    pub code: String,
    /// The class.
    pub class: ClassFacts,
    /// Settled or revoked.
    pub result: VoucherState,
    /// Certificate number, when settled.
    #[serde(default)]
    pub certificate_no: Option<String>,
    /// Reason, when revoked.
    #[serde(default)]
    pub reason: Option<String>,
    /// Subsidy paid, in fen (0 when revoked).
    pub amount_fen: i64,
    /// When recorded.
    pub at: DateTime<Utc>,
}

/// A person's lifelong training archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archive {
    /// Write counter.
    pub rev: u64,
    /// Trainings, oldest first.
    pub entries: Vec<ArchiveEntry>,
}

/// Settled figures of one district, programme or the city.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Settled vouchers (人次).
    pub trainings: u64,
    /// Of which led to a 职业资格 or 职业技能等级 certificate (trainings).
    pub certificates: u64,
    /// Distinct people who obtained such a certificate (REF-TARGET's figure).
    /// Counted from the first certificate of each person in the year; settlements
    /// counted before it was kept are not in it.
    #[serde(default)]
    pub certified_people: u64,
    /// Money paid, in fen.
    pub amount_fen: i64,
}

impl Tally {
    fn add(&mut self, certificate: bool, first_of_person: bool, fen: i64) {
        self.trainings += 1;
        if certificate {
            self.certificates += 1;
        }
        if first_of_person {
            self.certified_people += 1;
        }
        self.amount_fen += fen;
    }

    /// The sum of two tallies.
    pub fn plus(&self, other: &Tally) -> Tally {
        Tally {
            trainings: self.trainings + other.trainings,
            certificates: self.certificates + other.certificates,
            certified_people: self.certified_people + other.certified_people,
            amount_fen: self.amount_fen + other.amount_fen,
        }
    }
}

/// The voucher whose settlement first counted a person as certified in a
/// year: city-wide, per district and per programme.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certified {
    /// City-wide.
    pub city: Option<String>,
    /// Per district code.
    pub districts: BTreeMap<String, String>,
    /// Per programme.
    pub programmes: BTreeMap<String, String>,
}

/// Which of a settlement's counts are a person's first certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Firsts {
    city: bool,
    district: bool,
    programme: bool,
}

/// Marks `r`'s person as certified in `r`'s year where nobody counted them
/// yet, and answers where `r` is the one that counts. Idempotent: a retry
/// of the same settlement finds its own code.
fn first_certificates(kv: &impl KeyValue, r: &VoucherRecord) -> Result<Firsts, StoreError> {
    let key = certified_key(r.class.start_date.year(), &r.person);
    let c = infallible(update_existing::<Certified, std::convert::Infallible>(
        kv,
        &key,
        "certified",
        |mut c| {
            let before = c.clone();
            c.city.get_or_insert_with(|| r.code.clone());
            c.districts
                .entry(r.class.district.clone())
                .or_insert_with(|| r.code.clone());
            c.programmes
                .entry(r.class.programme.id())
                .or_insert_with(|| r.code.clone());
            Ok((c != before).then_some(c))
        },
    ))?;
    Ok(Firsts {
        city: c.city.as_deref() == Some(r.code.as_str()),
        district: c.districts.get(&r.class.district) == Some(&r.code),
        programme: c.programmes.get(&r.class.programme.id()) == Some(&r.code),
    })
}

/// Codes remembered by [`Progress`] so that a repaired settlement is not counted twice.
pub const PROGRESS_RECENT: usize = 512;

/// Progress of one year (by the class's first day), from settled vouchers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Write counter.
    pub rev: u64,
    /// City-wide.
    pub city: Tally,
    /// By district code.
    pub districts: BTreeMap<String, Tally>,
    /// By programme.
    pub programmes: BTreeMap<String, Tally>,
    /// Money by fund source, in fen.
    pub funds: BTreeMap<String, i64>,
    /// The last codes counted.
    #[serde(default)]
    pub recent: Vec<String>,
}

/// A person's electronic social security card status (VO-CARD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardStatus {
    /// Whether it is activated.
    pub active: bool,
    /// When this status was reported.
    pub changed_at: DateTime<Utc>,
    /// Who reported it.
    pub by: Actor,
    /// Its audit event is not written yet (set with the status, cleared
    /// after the event): a report retried after a crash in between writes
    /// the event instead of finding nothing to do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unaudited: bool,
}

// ---------------------------------------------------------------------------
// Helpers

fn infallible<T>(r: Result<T, UpdateError<std::convert::Infallible>>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        UpdateError::Store(s) => s,
        UpdateError::Refused(never) => match never {},
    })
}

/// Read-modify-write of a record that starts as its default value.
fn update_existing<T, E>(
    kv: &impl KeyValue,
    key: &str,
    what: &'static str,
    mut f: impl FnMut(T) -> Result<Option<T>, E>,
) -> Result<T, UpdateError<E>>
where
    T: Serialize + DeserializeOwned + Clone + Default,
{
    let out = update_json::<T, E>(kv, key, what, |cur| f(cur.unwrap_or_default()))?;
    Ok(out.unwrap_or_default())
}

// ---------------------------------------------------------------------------
// Issue

/// Everything about one voucher to issue except what the decision gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Person ref.
    pub person: String,
    /// Roster line.
    pub roster_line: usize,
    /// Target group.
    pub group: TargetGroup,
    /// The class.
    pub class: ClassFacts,
    /// What it is priced by.
    pub key: SubsidyKey,
    /// Issue date.
    pub today: NaiveDate,
}

/// What [`issue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// A new voucher.
    New(Box<VoucherRecord>),
    /// The trainee already had a voucher for this class line (a retry or a race).
    Existing(Box<VoucherRecord>),
    /// The rules refused.
    Refused(Decision),
    /// Another request won this voucher's ledger entry and, at the end of the
    /// wait, still held its issue lease without having written the record:
    /// nothing was written; retry after `retry_after` (the lease's remainder).
    Pending {
        /// Voucher code of the ledger entry.
        code: String,
        /// Until the lease ends.
        retry_after: chrono::Duration,
    },
}

/// The issue lease (VO-ISSUE-LEASE) and how long a request waits for another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueLease {
    /// How long the winner of a ledger entry alone may write its record
    /// (`policy::vouchers::issue_lease`).
    pub duration: chrono::Duration,
    /// How long a request that finds the entry but no record waits for the
    /// record before it answers [`Issued::Pending`] (while the lease holds).
    pub patience: std::time::Duration,
}

/// How long, by default, a request waits for another request's voucher record.
pub const ISSUE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

impl IssueLease {
    /// The lease of `duration` with the default patience.
    pub fn new(duration: chrono::Duration) -> Self {
        Self {
            duration,
            patience: ISSUE_PATIENCE,
        }
    }
}

enum LedgerRefusal {
    Existing(LedgerEntry),
    Refused(Decision),
}

/// A request's clock: the `now` it was given plus the time it has run since.
struct Clock {
    now: DateTime<Utc>,
    started: std::time::Instant,
}

impl Clock {
    fn at(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

/// Issues a voucher for `draft` if `decide` approves it against the person's ledger.
///
/// `decide` gets the person's earlier vouchers and returns the VO-* decision
/// (it may run several times under contention). `code` is the new voucher's
/// code, drawn by the caller from the host's randomness.
///
/// # One writer
///
/// The request whose compare-and-swap adds the ledger entry wins it and a
/// lease on it until `now + lease.duration`; it alone writes the voucher's
/// indexes, its `voucher.issued` event and its record (created only if
/// absent, [`create_json`]). Another request for the same class line that
/// finds the entry but no record waits for the record and answers it
/// ([`Issued::Existing`]); only once the lease has lapsed (the winner died
/// between its entry and its record) does it take the lease over, by a
/// compare-and-swap on the ledger that exactly one request wins, and finish
/// the issue; until then, after `lease.patience`, it answers
/// [`Issued::Pending`]. The winner checks its lease on its own clock before
/// writing, and if it lapsed takes it over like anyone else, so two requests
/// write the event only if one stalls for longer than the lease between that
/// check and its next host call; even then the record is written once.
pub fn issue(
    kv: &impl KeyValue,
    draft: &Draft,
    code: &VoucherCode,
    decide: impl Fn(&[Held]) -> IssueDecision,
    lease: IssueLease,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Issued, StoreError> {
    let clock = Clock {
        now,
        started: std::time::Instant::now(),
    };
    let mut approved: Option<(IssueDecision, LedgerEntry)> = None;
    let result = update_existing::<Ledger, LedgerRefusal>(
        kv,
        &ledger_key(&draft.person),
        "ledger",
        |mut ledger| {
            if let Some(e) = ledger.entries.iter().find(|e| {
                e.class_id == draft.class.class_id
                    && e.roster_line == draft.roster_line
                    && policy::vouchers::effective_state(e.state, e.last_valid_day, draft.today)
                        .counts()
            }) {
                return Err(LedgerRefusal::Existing(e.clone()));
            }
            let d = decide(&ledger.held());
            if d.decision.outcome != Outcome::Approved || d.amount.is_none() {
                return Err(LedgerRefusal::Refused(d.decision));
            }
            let entry = LedgerEntry {
                code: code.as_str().to_string(),
                class_id: draft.class.class_id.clone(),
                roster_line: draft.roster_line,
                key: draft.key.clone(),
                issued_on: draft.today,
                last_valid_day: d.last_valid_day,
                state: VoucherState::Issued,
                first_day: Some(draft.class.start_date),
                lease_until: Some(clock.at() + lease.duration),
            };
            ledger.entries.push(entry.clone());
            ledger.rev += 1;
            approved = Some((d, entry));
            Ok(Some(ledger))
        },
    );
    match result {
        Ok(_) => {
            let (d, entry) = approved.expect("an approved update set the decision");
            if !entry.leased_at(clock.at()) {
                // The lease lapsed before we could write: finish as any latecomer would.
                return finish_issue(kv, draft, entry, &decide, lease, actor, &clock);
            }
            let record = new_record(draft, code.as_str(), d, actor, now);
            Ok(match write_new(kv, &record, actor, now)? {
                Some(theirs) => Issued::Existing(Box::new(theirs)),
                None => Issued::New(Box::new(record)),
            })
        }
        Err(UpdateError::Store(e)) => Err(e),
        Err(UpdateError::Refused(LedgerRefusal::Refused(d))) => Ok(Issued::Refused(d)),
        Err(UpdateError::Refused(LedgerRefusal::Existing(entry))) => {
            finish_issue(kv, draft, entry, &decide, lease, actor, &clock)
        }
    }
}

/// Pause between two reads of a voucher record another request is writing.
fn poll_pause(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(attempt.min(10)) * 5)
}

/// A request found `entry` in the ledger: answer its record once it exists,
/// or, once the entry's lease has lapsed, take the lease over and write it.
fn finish_issue(
    kv: &impl KeyValue,
    draft: &Draft,
    mut entry: LedgerEntry,
    decide: &impl Fn(&[Held]) -> IssueDecision,
    lease: IssueLease,
    actor: &Actor,
    clock: &Clock,
) -> Result<Issued, StoreError> {
    let mut attempt = 0;
    loop {
        if let Some(r) = get(kv, &entry.code)? {
            return Ok(Issued::Existing(Box::new(r)));
        }
        let t = clock.at();
        if let Some(until) = entry.lease_until.filter(|_| entry.leased_at(t)) {
            if clock.started.elapsed() >= lease.patience {
                return Ok(Issued::Pending {
                    code: entry.code,
                    retry_after: until - t,
                });
            }
            attempt += 1;
            std::thread::sleep(poll_pause(attempt));
            continue;
        }
        match take_over(kv, &draft.person, &entry, t + lease.duration)? {
            TakeOver::Won(others) => {
                return repair_issue(kv, draft, &entry, &others, decide, actor, clock.now);
            }
            TakeOver::Lost(now_held) => entry = now_held,
        }
    }
}

enum TakeOver {
    /// This request holds the lease now; the person's other entries.
    Won(Vec<Held>),
    /// Another request took it over first: its entry as it is now.
    Lost(LedgerEntry),
}

/// Takes a lapsed issue lease over: a compare-and-swap on the ledger that
/// succeeds only while the entry still carries the lease `seen` read.
fn take_over(
    kv: &impl KeyValue,
    person: &str,
    seen: &LedgerEntry,
    until: DateTime<Utc>,
) -> Result<TakeOver, StoreError> {
    let mut others = Vec::new();
    let result = update_existing::<Ledger, Option<LedgerEntry>>(
        kv,
        &ledger_key(person),
        "ledger",
        |mut ledger| {
            others = ledger
                .entries
                .iter()
                .filter(|e| e.code != seen.code)
                .map(LedgerEntry::held)
                .collect();
            let Some(e) = ledger.entries.iter_mut().find(|e| e.code == seen.code) else {
                return Err(None);
            };
            if e.lease_until != seen.lease_until {
                return Err(Some(e.clone()));
            }
            e.lease_until = Some(until);
            ledger.rev += 1;
            Ok(Some(ledger))
        },
    );
    match result {
        Ok(_) => Ok(TakeOver::Won(others)),
        Err(UpdateError::Store(e)) => Err(e),
        Err(UpdateError::Refused(Some(e))) => Ok(TakeOver::Lost(e)),
        // Ledger entries are never removed.
        Err(UpdateError::Refused(None)) => Err(StoreError::Corrupt("ledger")),
    }
}

/// Writes, as the holder of a taken-over lease, the record of `entry` whose
/// first writer died after its ledger entry.
fn repair_issue(
    kv: &impl KeyValue,
    draft: &Draft,
    entry: &LedgerEntry,
    others: &[Held],
    decide: &impl Fn(&[Held]) -> IssueDecision,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Issued, StoreError> {
    let mut d = decide(others);
    d.last_valid_day = entry.last_valid_day;
    let Some(_) = d.amount else {
        return Ok(Issued::Refused(d.decision));
    };
    let mut draft = draft.clone();
    draft.today = entry.issued_on;
    let record = new_record(&draft, &entry.code, d, actor, now);
    Ok(Issued::Existing(Box::new(
        write_new(kv, &record, actor, now)?.unwrap_or(record),
    )))
}

fn new_record(
    draft: &Draft,
    code: &str,
    d: IssueDecision,
    actor: &Actor,
    now: DateTime<Utc>,
) -> VoucherRecord {
    VoucherRecord {
        code: code.to_string(),
        state: VoucherState::Issued,
        person: draft.person.clone(),
        roster_line: draft.roster_line,
        group: draft.group,
        class: draft.class.clone(),
        key: draft.key.clone(),
        amount: d.amount.expect("approved decisions carry an amount"),
        issued_on: draft.today,
        last_valid_day: d.last_valid_day,
        issued_at: now,
        issued_by: actor.clone(),
        decision: d.decision,
        certificate_no: None,
        revoke_reason: None,
        history: Vec::new(),
        rev: 1,
        counted: false,
        archived: false,
        audited: 1,
    }
}

/// Writes a new voucher's indexes, its `voucher.issued` event and its record,
/// as the holder of its issue lease. The record comes last, so a request that
/// finds it knows the rest is done, and is only created, never overwritten:
/// `Some(record)` is the record someone else created first (then nothing of
/// ours replaced it).
fn write_new(
    kv: &impl KeyValue,
    record: &VoucherRecord,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<VoucherRecord>, StoreError> {
    index::append(kv, &class_index(&record.class.class_id), &record.code)?;
    index::append(kv, ALL_INDEX, &record.code)?;
    audit::record(
        kv,
        Change {
            actor: actor.clone(),
            action: "voucher.issued".into(),
            entity: format!("voucher:{}", record.code),
            before: None,
            after: Some(audit::digest_of(record)),
            note: Some(format!("{}:{}", record.class.class_id, record.amount.fen)),
        },
        now,
    )?;
    if create_json(kv, &voucher_key(&record.code), record)? {
        return Ok(None);
    }
    get(kv, &record.code)
}

// ---------------------------------------------------------------------------
// Reading

/// Reads a voucher.
pub fn get(kv: &impl KeyValue, code: &str) -> Result<Option<VoucherRecord>, StoreError> {
    get_json(kv, &voucher_key(code), "voucher")
}

/// Reads several vouchers in one call (absent ones are left out).
pub fn get_many(kv: &impl KeyValue, codes: &[String]) -> Result<Vec<VoucherRecord>, StoreError> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = codes.iter().map(|c| voucher_key(c)).collect();
    kv.get_many(&keys)?
        .into_iter()
        .flatten()
        .map(|b| decode(&b, "voucher"))
        .collect()
}

/// A person's ledger (empty when they never had a voucher).
pub fn ledger(kv: &impl KeyValue, person: &str) -> Result<Ledger, StoreError> {
    Ok(get_json(kv, &ledger_key(person), "ledger")?.unwrap_or_default())
}

/// The classes whose roster holds or held `person`, from the indexes written
/// with the roster: the person's ledger (a voucher per roster line of an
/// approved class, never dropped) and their live enrolments (written when a
/// class is filed, in the same step as its roster). Two reads.
pub fn classes_of(
    kv: &impl KeyValue,
    person: &str,
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    let mut ids: std::collections::BTreeSet<String> = ledger(kv, person)?
        .entries
        .into_iter()
        .map(|e| e.class_id)
        .collect();
    let live: Vec<policy::class_opening::Enrolment> =
        get_json(kv, &crate::keys::person_enrolments(person), "enrolments")?.unwrap_or_default();
    ids.extend(live.into_iter().map(|e| e.class_id));
    Ok(ids)
}

/// A person's vouchers, oldest first: the ledger and the records, two calls.
pub fn of_person(kv: &impl KeyValue, person: &str) -> Result<Vec<VoucherRecord>, StoreError> {
    let l = ledger(kv, person)?;
    let codes: Vec<String> = l.entries.iter().map(|e| e.code.clone()).collect();
    get_many(kv, &codes)
}

/// One page of a class's vouchers.
pub fn of_class(
    kv: &impl KeyValue,
    class_id: &str,
    from: Position,
    limit: usize,
) -> Result<(Vec<VoucherRecord>, Option<Position>), StoreError> {
    let (codes, next) = index::read(kv, &class_index(class_id), from, limit)?;
    Ok((get_many(kv, &codes)?, next))
}

/// A person's archive (empty when nothing was archived).
pub fn archive(kv: &impl KeyValue, person: &str) -> Result<Archive, StoreError> {
    Ok(get_json(kv, &archive_key(person), "archive")?.unwrap_or_default())
}

/// The progress of `year` (zeros when nothing was settled).
pub fn progress(kv: &impl KeyValue, year: i32) -> Result<Progress, StoreError> {
    Ok(get_json(kv, &progress_key(year), "progress")?.unwrap_or_default())
}

/// The progress of each year of `years`, in one read.
pub fn progress_of_years(kv: &impl KeyValue, years: &[i32]) -> Result<Vec<Progress>, StoreError> {
    let keys: Vec<String> = years.iter().map(|y| progress_key(*y)).collect();
    kv.get_many(&keys)?
        .into_iter()
        .map(|v| {
            v.map(|b| decode::<Progress>(&b, "progress"))
                .transpose()
                .map(Option::unwrap_or_default)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Moves

/// Why a move was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError<E> {
    /// No voucher with this code.
    #[error("voucher not found")]
    NotFound,
    /// The caller's check refused (a VO-FLOW decision, a forbidden caller).
    #[error("move refused")]
    Refused(E),
}

/// Moves voucher `code` by `action`.
///
/// `f` gets the record as stored (with expiry on read NOT yet applied) and
/// either refuses or changes it (state, certificate number, reason); it may run
/// several times. The move, the ledger, the archive, the progress counters and
/// the audit event follow. Returns the record before and after.
pub fn apply<E>(
    kv: &impl KeyValue,
    code: &str,
    action: Action,
    actor: &Actor,
    now: DateTime<Utc>,
    mut f: impl FnMut(&mut VoucherRecord) -> Result<(), E>,
) -> Result<(VoucherRecord, VoucherRecord), UpdateError<MoveError<E>>> {
    let mut before: Option<VoucherRecord> = None;
    let mut refused_current: Option<VoucherRecord> = None;
    let result =
        update_json::<VoucherRecord, MoveError<E>>(kv, &voucher_key(code), "voucher", |cur| {
            let mut r = cur.ok_or(MoveError::NotFound)?;
            before = Some(r.clone());
            let from = r.state;
            if let Err(e) = f(&mut r) {
                refused_current = Some(r);
                return Err(MoveError::Refused(e));
            }
            let note = match action {
                Action::Settle => r.certificate_no.clone(),
                Action::Revoke => r.revoke_reason.clone(),
                _ => None,
            };
            r.history.push(Move {
                action,
                from,
                to: r.state,
                at: now,
                by: actor.clone(),
                note,
            });
            r.rev += 1;
            Ok(Some(r))
        });
    let after = match result {
        Ok(r) => r.ok_or(UpdateError::Refused(MoveError::NotFound))?,
        Err(e) => {
            if let Some(r) = refused_current.filter(VoucherRecord::needs_repair) {
                repair(kv, r, actor, now)?;
            }
            return Err(e);
        }
    };
    let before = before.expect("a successful update read the record");
    set_ledger_state(kv, &after)?;
    let after = finish(
        kv,
        after,
        actor,
        now,
        false,
        Some(audit::digest_of(&before)),
    )?;
    Ok((before, after))
}

fn set_ledger_state(kv: &impl KeyValue, r: &VoucherRecord) -> Result<(), StoreError> {
    infallible(update_existing::<Ledger, std::convert::Infallible>(
        kv,
        &ledger_key(&r.person),
        "ledger",
        |mut l| {
            let Some(e) = l.entries.iter_mut().find(|e| e.code == r.code) else {
                return Ok(None);
            };
            if e.state == r.state {
                return Ok(None);
            }
            e.state = r.state;
            l.rev += 1;
            Ok(Some(l))
        },
    ))?;
    Ok(())
}

/// Writes what a final state owes (archive entry, progress counts) and flags it on the voucher. Idempotent.
pub fn repair(
    kv: &impl KeyValue,
    r: VoucherRecord,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<VoucherRecord, StoreError> {
    finish(kv, r, actor, now, true, None)
}

/// Archive, progress and audit events a record owes, then the flags saying they are written.
fn finish(
    kv: &impl KeyValue,
    mut r: VoucherRecord,
    actor: &Actor,
    now: DateTime<Utc>,
    ledger: bool,
    before: Option<String>,
) -> Result<VoucherRecord, StoreError> {
    if !r.needs_repair() {
        return Ok(r);
    }
    if ledger {
        set_ledger_state(kv, &r)?;
    }
    if matches!(r.state, VoucherState::Settled | VoucherState::Revoked) && !r.archived {
        let entry = ArchiveEntry {
            code: r.code.clone(),
            class: r.class.clone(),
            result: r.state,
            certificate_no: r.certificate_no.clone(),
            reason: r.revoke_reason.clone(),
            amount_fen: if r.state == VoucherState::Settled {
                r.amount.fen
            } else {
                0
            },
            at: now,
        };
        infallible(update_existing::<Archive, std::convert::Infallible>(
            kv,
            &archive_key(&r.person),
            "archive",
            |mut a| {
                if a.entries.iter().any(|e| e.code == entry.code) {
                    return Ok(None);
                }
                a.entries.push(entry.clone());
                a.rev += 1;
                Ok(Some(a))
            },
        ))?;
    }
    if r.state == VoucherState::Settled && !r.counted {
        let certificate = matches!(
            r.class.certificate,
            Certificate::VocationalQualification | Certificate::SkillLevel
        );
        let fen = r.amount.fen;
        let firsts = if certificate {
            first_certificates(kv, &r)?
        } else {
            Firsts::default()
        };
        infallible(update_existing::<Progress, std::convert::Infallible>(
            kv,
            &progress_key(r.class.start_date.year()),
            "progress",
            |mut p| {
                if p.recent.contains(&r.code) {
                    return Ok(None);
                }
                p.city.add(certificate, firsts.city, fen);
                p.districts
                    .entry(r.class.district.clone())
                    .or_default()
                    .add(certificate, firsts.district, fen);
                p.programmes.entry(r.class.programme.id()).or_default().add(
                    certificate,
                    firsts.programme,
                    fen,
                );
                *p.funds.entry(r.amount.fund.id()).or_default() += fen;
                p.recent.push(r.code.clone());
                if p.recent.len() > PROGRESS_RECENT {
                    let extra = p.recent.len() - PROGRESS_RECENT;
                    p.recent.drain(..extra);
                }
                p.rev += 1;
                Ok(Some(p))
            },
        ))?;
    }
    // Moves not yet in the audit trail (one after a normal move; after a crash, the missed ones).
    let events = 1 + r.history.len();
    for (n, m) in r.history.iter().enumerate().skip(r.audited.max(1) - 1) {
        let last = n + 1 == r.history.len();
        audit::record(
            kv,
            Change {
                actor: if last && before.is_some() {
                    actor.clone()
                } else {
                    m.by.clone()
                },
                action: format!("voucher.{}", m.to.id()),
                entity: format!("voucher:{}", r.code),
                before: if last { before.clone() } else { None },
                after: last.then(|| audit::digest_of(&r)),
                note: match m.action {
                    Action::Revoke => Some("reason given".into()),
                    Action::Settle => m.note.clone(),
                    _ => None,
                }
                .or_else(|| before.is_none().then(|| "recorded on retry".into())),
            },
            now,
        )?;
    }
    let flagged = infallible(update_json::<VoucherRecord, std::convert::Infallible>(
        kv,
        &voucher_key(&r.code),
        "voucher",
        |cur| {
            let Some(mut c) = cur else { return Ok(None) };
            if c.history.len() != r.history.len() {
                // Moved again meanwhile: that move's request finishes the work.
                return Ok(None);
            }
            let archived = matches!(c.state, VoucherState::Settled | VoucherState::Revoked);
            let counted = c.state == VoucherState::Settled;
            let audited = c.audited.max(events.min(1 + c.history.len()));
            if (c.archived || !archived) && (c.counted || !counted) && c.audited == audited {
                return Ok(None);
            }
            c.archived |= archived;
            c.counted |= counted;
            c.audited = audited;
            c.rev += 1;
            Ok(Some(c))
        },
    ))?;
    if let Some(f) = flagged {
        r = f;
    }
    Ok(r)
}

/// One page of the expiry sweep: vouchers of [`ALL_INDEX`] from `from` that are
/// issued and past their last valid day on `today` are moved to expired.
/// Returns the codes expired and where the next page starts.
pub fn sweep(
    kv: &impl KeyValue,
    from: Position,
    limit: usize,
    today: NaiveDate,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Vec<String>, usize, Option<Position>), StoreError> {
    let (codes, next) = index::read(kv, ALL_INDEX, from, limit)?;
    let scanned = codes.len();
    let mut expired = Vec::new();
    for r in get_many(kv, &codes)? {
        if r.state_on(today) != VoucherState::Expired || r.state != VoucherState::Issued {
            continue;
        }
        match apply(kv, &r.code, Action::Expire, actor, now, |c| {
            if c.state_on(today) != VoucherState::Expired {
                return Err(());
            }
            c.state = policy::vouchers::transition(c.state, Action::Expire).map_err(|_| ())?;
            Ok(())
        }) {
            Ok(_) => expired.push(r.code),
            Err(UpdateError::Store(e)) => return Err(e),
            Err(UpdateError::Refused(_)) => {}
        }
    }
    Ok((expired, scanned, next))
}

// ---------------------------------------------------------------------------
// Cards

/// Records a card status reported by the social-security system.
///
/// The status is written marked as owing its audit event, then the event,
/// then the mark is cleared: a report retried after a crash in between
/// (the same status again) writes the event it owes, once the status is
/// there; a repeated report of a status already audited changes nothing.
pub fn set_card(
    kv: &impl KeyValue,
    person: &str,
    active: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CardStatus, StoreError> {
    let before: Option<CardStatus> = get_json(kv, &card_key(person), "card")?;
    let (status, before) = match before {
        Some(b) if b.active == active && !b.unaudited => return Ok(b),
        // Written by a report that died before its event: finish it.
        Some(b) if b.active == active => (b, None),
        other => {
            let status = CardStatus {
                active,
                changed_at: now,
                by: actor.clone(),
                unaudited: true,
            };
            put_json(kv, &card_key(person), &status)?;
            (status, other)
        }
    };
    let done = CardStatus {
        unaudited: false,
        ..status
    };
    audit::record(
        kv,
        Change {
            actor: done.by.clone(),
            action: if active {
                "card.activated".into()
            } else {
                "card.deactivated".into()
            },
            entity: format!("person:{person}"),
            before: before.as_ref().map(|b| {
                audit::digest_of(&CardStatus {
                    unaudited: false,
                    ..b.clone()
                })
            }),
            after: Some(audit::digest_of(&done)),
            note: None,
        },
        now,
    )?;
    put_json(kv, &card_key(person), &done)?;
    Ok(done)
}

/// A person's card status, if reported.
pub fn card(kv: &impl KeyValue, person: &str) -> Result<Option<CardStatus>, StoreError> {
    get_json(kv, &card_key(person), "card")
}

/// The classes a person is or was enrolled in: live enrolments and classes of their vouchers.
pub fn classes_of_person(kv: &impl KeyValue, person: &str) -> Result<Vec<String>, StoreError> {
    let keys = vec![crate::keys::person_enrolments(person), ledger_key(person)];
    let v = kv.get_many(&keys)?;
    let mut out: Vec<String> = Vec::new();
    if let Some(b) = &v[0] {
        let list: Vec<policy::class_opening::Enrolment> = decode(b, "enrolments")?;
        out.extend(list.into_iter().map(|e| e.class_id));
    }
    if let Some(b) = &v[1] {
        let l: Ledger = decode(b, "ledger")?;
        out.extend(l.entries.into_iter().map(|e| e.class_id));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
#[path = "vouchers/issue_tests.rs"]
mod issue_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vo_card_a_crash_between_the_card_status_and_its_event_is_repaired_by_the_retry() {
        let kv = MemoryStore::new();
        let events = |kv: &MemoryStore| {
            crate::audit::history(kv, "person:p9", Default::default(), 100)
                .unwrap()
                .0
                .len()
        };
        kv.fail_after_writes(Some(1));
        assert!(set_card(&kv, "p9", true, &actor(), Utc::now()).is_err());
        kv.fail_after_writes(None);
        assert!(card(&kv, "p9").unwrap().unwrap().unaudited);
        assert_eq!(events(&kv), 0, "the crash lost the event");
        let s = set_card(&kv, "p9", true, &actor(), Utc::now()).unwrap();
        assert!(s.active && !s.unaudited);
        assert_eq!(events(&kv), 1, "the retry wrote it");
        set_card(&kv, "p9", true, &actor(), Utc::now()).unwrap();
        assert_eq!(events(&kv), 1, "a repeated report changes nothing");
        set_card(&kv, "p9", false, &actor(), Utc::now()).unwrap();
        assert_eq!(events(&kv), 2);
    }
    use crate::memory::MemoryStore;

    #[test]
    fn concurrent_first_updates_of_a_ledger_lose_nothing() {
        let kv = MemoryStore::new();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    infallible(update_existing::<Ledger, std::convert::Infallible>(
                        &kv,
                        "vt:test",
                        "ledger",
                        |mut l| {
                            l.rev += 1;
                            Ok(Some(l))
                        },
                    ))
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let l: Ledger = get_json(&kv, "vt:test", "ledger").unwrap().unwrap();
        assert_eq!(l.rev, 8, "no update lost");
    }

    pub(super) fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    pub(super) fn actor() -> Actor {
        Actor {
            sub: "t".into(),
            role: "institution".into(),
        }
    }

    pub(super) fn draft() -> Draft {
        let occupation = OccupationCode::parse("4-10-01-05").unwrap();
        Draft {
            person: "ab".repeat(32),
            roster_line: 0,
            group: TargetGroup::FlexibleEmployment,
            class: ClassFacts {
                class_id: "KM-2022-000001".into(),
                title: "养老护理员（五级）".into(),
                institution: policy::fixtures::INSTITUTION.into(),
                district: "530102".into(),
                occupation: Some(occupation.clone()),
                project: None,
                level: Some(SkillLevel::Five),
                certificate: Certificate::SkillLevel,
                programme: Programme::KangyangYunShifu,
                hours: 120,
                start_date: day("2022-06-13"),
                end_date: day("2022-06-27"),
            },
            key: SubsidyKey::Level(occupation, SkillLevel::Five),
            today: day("2022-06-05"),
        }
    }

    pub(super) fn decide(held: &[Held]) -> IssueDecision {
        policy::vouchers::decide_issue(
            &policy::vouchers::IssueFacts {
                class_id: "KM-2022-000001",
                class_approved: true,
                subsidised_kind: true,
                on_roster: true,
                roster_line: 0,
                key: draft().key,
                group: TargetGroup::FlexibleEmployment,
                card_active: Some(true),
                held,
                today: day("2022-06-05"),
                first_day: day("2022-06-13"),
            },
            policy::Parameters::shipped(),
            policy::vouchers::Subsidies::shipped(),
        )
    }

    pub(super) fn code(n: u8) -> VoucherCode {
        VoucherCode::from_random(&[n; 12])
    }

    fn settle(
        kv: &MemoryStore,
        c: &str,
    ) -> Result<(VoucherRecord, VoucherRecord), UpdateError<MoveError<()>>> {
        apply(kv, c, Action::Settle, &actor(), Utc::now(), |r| {
            r.state = policy::vouchers::transition(r.state, Action::Settle).map_err(|_| ())?;
            r.certificate_no = Some("C-1".into());
            Ok(())
        })
    }

    pub(super) fn lease() -> IssueLease {
        IssueLease {
            duration: chrono::Duration::seconds(30),
            patience: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn a_crash_after_the_ledger_entry_is_finished_with_the_same_code_once_the_lease_lapses() {
        let kv = MemoryStore::new();
        let t0 = Utc::now();
        // Writes: the ledger's creation election and the ledger itself; then the crash.
        kv.fail_after_writes(Some(2));
        assert!(issue(&kv, &draft(), &code(1), decide, lease(), &actor(), t0).is_err());
        kv.fail_after_writes(None);
        assert!(get(&kv, code(1).as_str()).unwrap().is_none());
        // The crashed request's lease ran from a moment after t0: a second more covers it.
        let after_lease = t0 + lease().duration + chrono::Duration::seconds(1);
        let again = issue(
            &kv,
            &draft(),
            &code(2),
            decide,
            lease(),
            &actor(),
            after_lease,
        )
        .unwrap();
        let Issued::Existing(r) = again else {
            panic!("{again:?}")
        };
        assert_eq!(r.code, code(1).as_str(), "the ledger's code is kept");
        assert!(get(&kv, code(1).as_str()).unwrap().is_some());
        assert!(get(&kv, code(2).as_str()).unwrap().is_none());
        assert_eq!(ledger(&kv, &draft().person).unwrap().entries.len(), 1);
    }

    /// REF-TARGET counts people: a person certified twice in a year is one
    /// person city-wide, in each district and in each programme they were
    /// certified in; their trainings all count.
    #[test]
    fn certificates_count_distinct_people_while_trainings_count_each_settlement() {
        let kv = MemoryStore::new();
        let settled = |n: u8, level: SkillLevel, district: &str, programme: Programme| {
            let mut d = draft();
            let occupation = OccupationCode::parse("4-10-01-05").unwrap();
            d.key = SubsidyKey::Level(occupation, level);
            d.class.level = Some(level);
            d.class.district = district.into();
            d.class.programme = programme;
            d.class.class_id = format!("KM-2022-00000{n}");
            let key = d.key.clone();
            let decide = |held: &[Held]| {
                policy::vouchers::decide_issue(
                    &policy::vouchers::IssueFacts {
                        class_id: "KM-2022-000001",
                        class_approved: true,
                        subsidised_kind: true,
                        on_roster: true,
                        roster_line: 0,
                        key: key.clone(),
                        group: TargetGroup::FlexibleEmployment,
                        card_active: Some(true),
                        held,
                        today: day("2022-06-05"),
                        first_day: day("2022-06-13"),
                    },
                    policy::Parameters::shipped(),
                    policy::vouchers::Subsidies::shipped(),
                )
            };
            let c = code(n);
            let issued = issue(&kv, &d, &c, decide, lease(), &actor(), Utc::now()).unwrap();
            assert!(matches!(issued, Issued::New(_)), "{issued:?}");
            apply(&kv, c.as_str(), Action::Redeem, &actor(), Utc::now(), |r| {
                r.state = VoucherState::Redeemed;
                Ok::<(), ()>(())
            })
            .unwrap();
            settle(&kv, c.as_str()).unwrap();
        };
        settled(1, SkillLevel::Five, "530102", Programme::KangyangYunShifu);
        settled(2, SkillLevel::Four, "530102", Programme::KangyangYunShifu);
        settled(
            3,
            SkillLevel::Three,
            "530103",
            Programme::SkillsUpgradeAction,
        );
        let p = progress(&kv, 2022).unwrap();
        let figures = |t: &Tally| (t.trainings, t.certificates, t.certified_people);
        assert_eq!(figures(&p.city), (3, 3, 1));
        assert_eq!(figures(&p.districts["530102"]), (2, 2, 1));
        assert_eq!(figures(&p.districts["530103"]), (1, 1, 1));
        assert_eq!(figures(&p.programmes["kangyang_yun_shifu"]), (2, 2, 1));
        assert_eq!(figures(&p.programmes["skills_upgrade_action"]), (1, 1, 1));
    }

    #[test]
    fn a_crash_after_settling_is_repaired_by_a_retry_and_counted_once() {
        let kv = MemoryStore::new();
        let c = code(3);
        issue(&kv, &draft(), &c, decide, lease(), &actor(), Utc::now()).unwrap();
        apply(&kv, c.as_str(), Action::Redeem, &actor(), Utc::now(), |r| {
            r.state = VoucherState::Redeemed;
            Ok::<(), ()>(())
        })
        .unwrap();
        // The voucher's swap lands, the ledger update after it crashes.
        kv.fail_after_writes(Some(1));
        assert!(matches!(
            settle(&kv, c.as_str()),
            Err(UpdateError::Store(_))
        ));
        kv.fail_after_writes(None);
        let r = get(&kv, c.as_str()).unwrap().unwrap();
        assert_eq!(r.state, VoucherState::Settled);
        assert!(!r.counted && !r.archived);
        assert_eq!(progress(&kv, 2022).unwrap().city.trainings, 0);
        // The retry is refused (settled once) and finishes the work.
        for _ in 0..2 {
            assert!(matches!(
                settle(&kv, c.as_str()),
                Err(UpdateError::Refused(MoveError::Refused(())))
            ));
        }
        let r = get(&kv, c.as_str()).unwrap().unwrap();
        assert!(r.counted && r.archived);
        let p = progress(&kv, 2022).unwrap();
        assert_eq!((p.city.trainings, p.city.amount_fen), (1, 140_000));
        assert_eq!(archive(&kv, &r.person).unwrap().entries.len(), 1);
        assert_eq!(
            ledger(&kv, &r.person).unwrap().entries[0].state,
            VoucherState::Settled
        );
        assert_eq!(
            crate::audit::verify::integrate_and_verify_all(
                &kv,
                &crate::audit::tree::LogSigner::for_tests()
            )
            .unwrap(),
            (3, vec![])
        );
    }
}
