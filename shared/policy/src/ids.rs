//! Identifiers that parse rather than validate (REF-ID, REF-USCC, REF-PHONE,
//! REF-AREA, REF-OCC code format, REF-LEVEL).
//!
//! A value of one of these types is valid by construction: the only way to get
//! one is `parse`, and serde goes through `parse` too, so an invalid ID number
//! cannot exist past the edge of the system. Personal identifiers
//! ([`IdNumber`], [`Mobile`]) never print themselves in full: `Debug` masks
//! them, there is no `Display`, and the full value is only reachable through
//! an explicit [`IdNumber::expose`].

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier did not parse. Messages never repeat the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong number of characters.
    #[error("must be {expected} characters long, got {actual}")]
    Length {
        /// Characters required.
        expected: usize,
        /// Characters given.
        actual: usize,
    },
    /// A character outside the allowed set.
    #[error("character {position} is not allowed here")]
    Character {
        /// 1-based position of the offending character.
        position: usize,
    },
    /// The 6-digit area code does not name a province.
    #[error("area code does not name a province or region")]
    Area,
    /// The birth date does not exist or lies in the future.
    #[error("birth date does not exist or is in the future")]
    BirthDate,
    /// The check character does not match the other characters.
    #[error("check character does not match")]
    CheckCharacter,
    /// Not of the documented shape.
    #[error("{0}")]
    Format(&'static str),
}

/// The first year [`IdNumber::parse`] checks against the clock: every
/// earlier birth date is in the past (this code was written in 2026).
pub const CLOCK_FROM_YEAR: i32 = 2026;

/// Today in China Standard Time (UTC+08:00, no DST).
pub fn today_cst() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: [u8; 11] = *b"10X98765432";

/// The check character (GB 11643-1999) of an ID number's first 17
/// characters, which must be ASCII digits (for making valid numbers in
/// tests and sample data; [`IdNumber::parse`] checks it).
///
/// ```
/// assert_eq!(policy::ids::check_character(b"11010519491231002"), b'X');
/// ```
pub fn check_character(first_17: &[u8]) -> u8 {
    let sum: u32 = first_17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    ID_CHECK[(sum % 11) as usize]
}
/// Province-level prefixes of GB/T 2260 (and 71/81/82/83 used on ID numbers).
const PROVINCES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// A resident identity card number (GB 11643-1999), REF-ID.
///
/// ```
/// use policy::ids::IdNumber;
/// let id = IdNumber::parse("11010519491231002x").unwrap();
/// assert_eq!(id.masked(), "110105********002X");
/// assert!(IdNumber::parse("130402198207290622").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

impl IdNumber {
    /// Parses an ID number, normalising a lower-case `x`; the birth date must not be after today (CST).
    ///
    /// The clock is read only for a birth date in [`CLOCK_FROM_YEAR`] or
    /// later: earlier years are in the past on any machine running this
    /// code, and a 60-trainee roster would otherwise read the clock (a host
    /// call in wasm) 60 times.
    pub fn parse(input: impl AsRef<str>) -> Result<Self, IdError> {
        Self::parse_with(input, |birth| {
            birth.year() >= CLOCK_FROM_YEAR && birth > today_cst()
        })
    }

    /// Parses an ID number whose birth date must not be after `today`.
    pub fn parse_at(input: impl AsRef<str>, today: NaiveDate) -> Result<Self, IdError> {
        Self::parse_with(input, |birth| birth > today)
    }

    /// Parses an ID number whose birth date must not be `in_future`.
    fn parse_with(
        input: impl AsRef<str>,
        in_future: impl FnOnce(NaiveDate) -> bool,
    ) -> Result<Self, IdError> {
        let s = input.as_ref().trim().to_ascii_uppercase();
        let n = s.chars().count();
        if n != 18 {
            return Err(IdError::Length {
                expected: 18,
                actual: n,
            });
        }
        let bytes = s.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            let ok = b.is_ascii_digit() || (i == 17 && *b == b'X');
            if !ok {
                return Err(IdError::Character { position: i + 1 });
            }
        }
        let province = (bytes[0] - b'0') * 10 + (bytes[1] - b'0');
        if !PROVINCES.contains(&province) {
            return Err(IdError::Area);
        }
        let birth = yyyymmdd(&bytes[6..14]).ok_or(IdError::BirthDate)?;
        if birth.year() < 1880 || in_future(birth) {
            return Err(IdError::BirthDate);
        }
        if check_character(&bytes[..17]) != bytes[17] {
            return Err(IdError::CheckCharacter);
        }
        Ok(Self(s))
    }

    /// The full number. Call only where the full value is needed (hashing, an authorised view).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The number as one integer, equal and ordered exactly as the text: a
    /// cheap in-memory map key (comparing text is a byte loop in wasm). As
    /// personal as the number itself: never stored, logged or shown.
    pub fn packed(&self) -> u64 {
        self.0.bytes().fold(0, |n, b| {
            n * 11 + if b == b'X' { 10 } else { u64::from(b - b'0') }
        })
    }

    /// `530102********1234`: area code and last four characters.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }

    /// The 6-digit area code of the place of first registration.
    pub fn area_code(&self) -> &str {
        &self.0[..6]
    }

    /// The date of birth encoded in the number.
    pub fn birth_date(&self) -> NaiveDate {
        yyyymmdd(&self.0.as_bytes()[6..14]).expect("checked at parse")
    }
}

/// The date written as eight ASCII digits `YYYYMMDD` (already checked to be
/// digits), without a format-string parser: it runs for every trainee of
/// every request.
fn yyyymmdd(digits: &[u8]) -> Option<NaiveDate> {
    let n = |r: std::ops::Range<usize>| {
        digits[r]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    NaiveDate::from_ymd_opt(i32::try_from(n(0..4)).ok()?, n(4..6), n(6..8))
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl TryFrom<String> for IdNumber {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<IdNumber> for String {
    fn from(value: IdNumber) -> Self {
        value.0
    }
}

/// A mainland mobile number, REF-PHONE: `1[3-9]` and nine digits, `+86` accepted and dropped.
///
/// ```
/// use policy::ids::Mobile;
/// assert_eq!(Mobile::parse("+86 138 0013 8000").unwrap().masked(), "138****8000");
/// assert!(Mobile::parse("12800138000").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(String);

impl Mobile {
    /// Parses a mobile number; spaces and dashes are ignored, a `+86`/`0086` prefix dropped.
    pub fn parse(input: impl AsRef<str>) -> Result<Self, IdError> {
        let compact: String = input
            .as_ref()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let digits = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("0086"))
            .unwrap_or(&compact);
        let n = digits.chars().count();
        if n != 11 {
            return Err(IdError::Length {
                expected: 11,
                actual: n,
            });
        }
        if let Some(pos) = digits.chars().position(|c| !c.is_ascii_digit()) {
            return Err(IdError::Character { position: pos + 1 });
        }
        let b = digits.as_bytes();
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(IdError::Format("a mobile number starts with 13 to 19"));
        }
        Ok(Self(digits.to_string()))
    }

    /// The eleven digits. Call only where the full value is needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The number as one integer, equal and ordered exactly as the text: a
    /// cheap in-memory map key. As personal as the number itself: never
    /// stored, logged or shown.
    pub fn packed(&self) -> u64 {
        self.0.bytes().fold(0, |n, b| n * 10 + u64::from(b - b'0'))
    }

    /// `138****1234`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked())
    }
}

impl TryFrom<String> for Mobile {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Mobile> for String {
    fn from(value: Mobile) -> Self {
        value.0
    }
}

const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A unified social credit code (GB 32100-2015), REF-USCC.
///
/// The character set and length are enforced at parse; the check character is
/// not, because real codes that fail it exist: [`CreditCode::check_ok`] tells,
/// and the class-opening decision turns a failure into a warning.
///
/// ```
/// use policy::ids::CreditCode;
/// let code = CreditCode::parse("91110000101623741K").unwrap();
/// assert!(code.check_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditCode(String);

impl CreditCode {
    /// Parses a code: 18 characters from `0-9 A-H J-N P-R T U W X Y` (lower case accepted).
    pub fn parse(input: impl AsRef<str>) -> Result<Self, IdError> {
        let s = input.as_ref().trim().to_ascii_uppercase();
        let n = s.chars().count();
        if n != 18 {
            return Err(IdError::Length {
                expected: 18,
                actual: n,
            });
        }
        if let Some(pos) = s.bytes().position(|b| !USCC_CHARS.contains(&b)) {
            return Err(IdError::Character { position: pos + 1 });
        }
        Ok(Self(s))
    }

    /// The expected check character for the first 17 characters.
    fn expected_check(&self) -> u8 {
        let sum: u32 = self.0.as_bytes()[..17]
            .iter()
            .zip(USCC_WEIGHTS)
            .map(|(b, w)| USCC_CHARS.iter().position(|c| c == b).expect("parsed") as u32 * w)
            .sum();
        let check = (31 - sum % 31) % 31;
        USCC_CHARS[check as usize]
    }

    /// Whether the check character matches (REF-USCC).
    pub fn check_ok(&self) -> bool {
        self.expected_check() == self.0.as_bytes()[17]
    }

    /// The code as text (not personal data).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CreditCode {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<CreditCode> for String {
    fn from(value: CreditCode) -> Self {
        value.0
    }
}

/// A national occupation classification code `d-dd-dd-dd` (REF-OCC), for example `4-10-01-05`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OccupationCode(String);

impl OccupationCode {
    /// Parses `d-dd-dd-dd`.
    pub fn parse(input: impl AsRef<str>) -> Result<Self, IdError> {
        let s = input.as_ref().trim();
        let parts: Vec<&str> = s.split('-').collect();
        let shape = [1usize, 2, 2, 2];
        let ok = parts.len() == 4
            && parts
                .iter()
                .zip(shape)
                .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(IdError::Format("an occupation code looks like 4-10-01-05"));
        }
        Ok(Self(s.to_string()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OccupationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for OccupationCode {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<OccupationCode> for String {
    fn from(value: OccupationCode) -> Self {
        value.0
    }
}

/// Skill levels of the national system (REF-LEVEL). In JSON the level number: 5 (五级/初级工) to 1 (一级/高级技师).
/// Ordered from the lowest qualification to the highest (`Five < One`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum SkillLevel {
    /// 五级/初级工.
    Five,
    /// 四级/中级工.
    Four,
    /// 三级/高级工.
    Three,
    /// 二级/技师.
    Two,
    /// 一级/高级技师.
    One,
}

impl SkillLevel {
    /// All levels, lowest first.
    pub const ALL: [SkillLevel; 5] = [Self::Five, Self::Four, Self::Three, Self::Two, Self::One];

    /// Parses the level number 1 to 5.
    pub fn parse(n: u8) -> Result<Self, IdError> {
        Ok(match n {
            5 => Self::Five,
            4 => Self::Four,
            3 => Self::Three,
            2 => Self::Two,
            1 => Self::One,
            _ => {
                return Err(IdError::Format(
                    "a skill level is 1 (highest) to 5 (lowest)",
                ));
            }
        })
    }

    /// The level number, 5 lowest to 1 highest.
    pub fn number(self) -> u8 {
        match self {
            Self::Five => 5,
            Self::Four => 4,
            Self::Three => 3,
            Self::Two => 2,
            Self::One => 1,
        }
    }

    /// Whether `self` is a higher qualification than `other`.
    pub fn is_higher_than(self, other: SkillLevel) -> bool {
        self.number() < other.number()
    }

    /// The Chinese name, for example `四级/中级工`.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Five => "五级/初级工",
            Self::Four => "四级/中级工",
            Self::Three => "三级/高级工",
            Self::Two => "二级/技师",
            Self::One => "一级/高级技师",
        }
    }
}

impl TryFrom<u8> for SkillLevel {
    type Error = IdError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<SkillLevel> for u8 {
    fn from(value: SkillLevel) -> Self {
        value.number()
    }
}

/// A Kunming county-level district or functional zone (REF-AREA).
///
/// County-level units carry their GB/T 2260 code; functional zones, which have
/// none, carry the project's own `KM-…` id and a parent county. In JSON: the code or zone id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AreaCode(&'static Area);

/// One entry of the district table.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Area {
    /// GB/T 2260 code or own zone id.
    pub code: &'static str,
    /// Chinese name.
    pub name_zh: &'static str,
    /// For a functional zone, the county-level code it lies in.
    pub parent: Option<&'static str>,
}

const AREAS: &[Area] = &[
    Area {
        code: "530102",
        name_zh: "五华区",
        parent: None,
    },
    Area {
        code: "530103",
        name_zh: "盘龙区",
        parent: None,
    },
    Area {
        code: "530111",
        name_zh: "官渡区",
        parent: None,
    },
    Area {
        code: "530112",
        name_zh: "西山区",
        parent: None,
    },
    Area {
        code: "530113",
        name_zh: "东川区",
        parent: None,
    },
    Area {
        code: "530114",
        name_zh: "呈贡区",
        parent: None,
    },
    Area {
        code: "530115",
        name_zh: "晋宁区",
        parent: None,
    },
    Area {
        code: "530124",
        name_zh: "富民县",
        parent: None,
    },
    Area {
        code: "530125",
        name_zh: "宜良县",
        parent: None,
    },
    Area {
        code: "530126",
        name_zh: "石林县",
        parent: None,
    },
    Area {
        code: "530127",
        name_zh: "嵩明县",
        parent: None,
    },
    Area {
        code: "530128",
        name_zh: "禄劝县",
        parent: None,
    },
    Area {
        code: "530129",
        name_zh: "寻甸县",
        parent: None,
    },
    Area {
        code: "530181",
        name_zh: "安宁市",
        parent: None,
    },
    Area {
        code: "KM-JKQ",
        name_zh: "经开区",
        parent: Some("530111"),
    },
    Area {
        code: "KM-YZH",
        name_zh: "阳宗海风景名胜区",
        parent: Some("530125"),
    },
    Area {
        code: "KM-DZXQ",
        name_zh: "滇中新区",
        parent: Some("530181"),
    },
    Area {
        code: "KM-GXQ",
        name_zh: "高新区",
        parent: Some("530112"),
    },
    Area {
        code: "KM-DCDJQ",
        name_zh: "滇池度假区",
        parent: Some("530112"),
    },
    Area {
        code: "KM-MH",
        name_zh: "磨憨",
        parent: None,
    },
];

impl AreaCode {
    /// Parses a Kunming county code (`530102`) or functional-zone id (`KM-JKQ`).
    pub fn parse(input: impl AsRef<str>) -> Result<Self, IdError> {
        let s = input.as_ref().trim();
        AREAS
            .iter()
            .find(|a| a.code.eq_ignore_ascii_case(s))
            .map(Self)
            .ok_or(IdError::Format(
                "not a Kunming county-level code or functional-zone id",
            ))
    }

    /// Every district and zone.
    pub fn all() -> impl Iterator<Item = AreaCode> {
        AREAS.iter().map(Self)
    }

    /// The code or zone id.
    pub fn code(self) -> &'static str {
        self.0.code
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        self.0.name_zh
    }

    /// Whether this is a functional zone with no national code.
    pub fn is_zone(self) -> bool {
        self.0.code.starts_with("KM-")
    }

    /// The county a functional zone lies in (`None` for a county, and for 磨憨,
    /// which lies in no Kunming county).
    pub fn parent(self) -> Option<AreaCode> {
        self.0.parent.and_then(|p| AreaCode::parse(p).ok())
    }

    /// Where a roll-up to counties counts this area: its parent county, or itself.
    pub fn rolled_up(self) -> AreaCode {
        self.parent().unwrap_or(self)
    }
}

impl TryFrom<String> for AreaCode {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<AreaCode> for String {
    fn from(value: AreaCode) -> Self {
        value.0.code.to_string()
    }
}

impl fmt::Display for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

/// Validates an ISBN-13 (or ISBN-10) with its check digit; hyphens and spaces ignored.
pub fn isbn_ok(input: impl AsRef<str>) -> bool {
    let digits: Vec<char> = input
        .as_ref()
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .collect();
    match digits.len() {
        13 => {
            let Some(d) = digits
                .iter()
                .map(|c| c.to_digit(10))
                .collect::<Option<Vec<u32>>>()
            else {
                return false;
            };
            let sum: u32 = d
                .iter()
                .enumerate()
                .map(|(i, v)| if i % 2 == 0 { *v } else { v * 3 })
                .sum();
            sum.is_multiple_of(10)
        }
        10 => {
            let mut sum = 0;
            for (i, c) in digits.iter().enumerate() {
                let v = match (i, c) {
                    (9, 'X' | 'x') => 10,
                    (_, c) => match c.to_digit(10) {
                        Some(v) => v,
                        None => return false,
                    },
                };
                sum += v * (10 - i as u32);
            }
            sum.is_multiple_of(11)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ref_id_accepts_and_rejects_the_documented_examples() {
        let today = day("2022-06-01");
        let cases: &[(&str, Result<(), IdError>)] = &[
            ("11010519491231002X", Ok(())),
            ("11010519491231002x", Ok(())),
            ("440524188001010014", Ok(())),
            ("130402198207290622", Err(IdError::CheckCharacter)),
            (
                "11010519491231002",
                Err(IdError::Length {
                    expected: 18,
                    actual: 17,
                }),
            ),
            (
                "1101051949123100211",
                Err(IdError::Length {
                    expected: 18,
                    actual: 19,
                }),
            ),
            (
                "11010519491231X02X",
                Err(IdError::Character { position: 15 }),
            ),
            ("99010519491231002X", Err(IdError::Area)),
            ("110105194902300021", Err(IdError::BirthDate)),
            // Month 13, day 00, and 29 February of a year that is not a leap year.
            ("110105194913010021", Err(IdError::BirthDate)),
            ("110105194912000021", Err(IdError::BirthDate)),
            ("110105194902290021", Err(IdError::BirthDate)),
        ];
        for (input, want) in cases {
            let got = IdNumber::parse_at(input, today).map(|_| ());
            assert_eq!(&got, want, "REF-ID case {input:?}");
        }
    }

    #[test]
    fn ref_id_birth_date_today_is_valid_and_tomorrow_is_not() {
        // 530122 is the old code of 晋宁县, still valid on ID numbers.
        let base = "53012220220601001";
        let with_check = |b: &str| format!("{b}{}", check_character(b.as_bytes()) as char);
        let id = with_check(base);
        assert!(
            IdNumber::parse_at(&id, day("2022-06-01")).is_ok(),
            "REF-ID born today"
        );
        assert_eq!(
            IdNumber::parse_at(&id, day("2022-05-31")),
            Err(IdError::BirthDate),
            "REF-ID born tomorrow"
        );
    }

    #[test]
    fn ref_id_never_prints_the_full_number() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains("11010519491231002X"), "{shown}");
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(id.birth_date(), day("1949-12-31"));
    }

    #[test]
    fn ref_uscc_checks_character_set_length_and_check_character() {
        let good = CreditCode::parse("91110000101623741K").unwrap();
        assert!(good.check_ok(), "REF-USCC valid example");
        let bad = CreditCode::parse("91110000101623741J").unwrap();
        assert!(
            !bad.check_ok(),
            "REF-USCC wrong check parses but fails the check"
        );
        assert_eq!(
            CreditCode::parse("91110000101623741I"),
            Err(IdError::Character { position: 18 }),
            "REF-USCC I is not in the set"
        );
        assert_eq!(
            CreditCode::parse("9111000010162374"),
            Err(IdError::Length {
                expected: 18,
                actual: 16
            })
        );
    }

    #[test]
    fn ref_phone_boundaries() {
        let cases: &[(&str, bool)] = &[
            ("13800138000", true),
            ("19912345678", true),
            ("+8613800138000", true),
            ("0086 138-0013-8000", true),
            ("12800138000", false),
            ("23800138000", false),
            ("1380013800", false),
            ("138001380001", false),
            ("1380013800a", false),
        ];
        for (input, ok) in cases {
            assert_eq!(
                Mobile::parse(input).is_ok(),
                *ok,
                "REF-PHONE case {input:?}"
            );
        }
        let m = Mobile::parse("13800138000").unwrap();
        assert_eq!(m.masked(), "138****8000");
        assert!(!format!("{m:?}").contains("13800138000"));
    }

    #[test]
    fn ref_area_knows_counties_and_zones_but_not_other_cities() {
        assert_eq!(AreaCode::parse("530102").unwrap().name_zh(), "五华区");
        assert!(
            AreaCode::parse("KM-JKQ").unwrap().is_zone(),
            "REF-AREA zone"
        );
        assert!(
            AreaCode::parse("530302").is_err(),
            "REF-AREA 曲靖 is not Kunming"
        );
        assert!(
            AreaCode::parse("530122").is_err(),
            "REF-AREA old code is not a district"
        );
        assert_eq!(AreaCode::all().count(), 20);
    }

    #[test]
    fn ref_level_orders_levels_and_rejects_out_of_range() {
        assert!(
            SkillLevel::Four.is_higher_than(SkillLevel::Five),
            "REF-LEVEL"
        );
        assert!(!SkillLevel::Five.is_higher_than(SkillLevel::Five));
        assert!(SkillLevel::parse(0).is_err());
        assert!(SkillLevel::parse(6).is_err());
        assert_eq!(SkillLevel::parse(1).unwrap().name_zh(), "一级/高级技师");
    }

    #[test]
    fn ref_occ_code_shape() {
        assert!(OccupationCode::parse("4-10-01-05").is_ok(), "REF-OCC");
        for bad in ["41-0-01-05", "4-10-01", "4-10-01-0a", "4100105"] {
            assert!(OccupationCode::parse(bad).is_err(), "REF-OCC {bad}");
        }
    }

    #[test]
    fn isbn_check_digits() {
        assert!(isbn_ok("978-7-111-21382-6"));
        assert!(!isbn_ok("9787111213827"));
        assert!(isbn_ok("7-111-21382-3"));
        assert!(!isbn_ok("7-111-21382-4"));
        assert!(!isbn_ok("123"));
    }

    proptest::proptest! {
        #[test]
        fn ref_id_and_ref_phone_packed_numbers_are_equal_and_ordered_as_their_text(
            a in (0usize..5_000, 0u32..10), b in (0usize..5_000, 0u32..10)
        ) {
            let (x, y) = (crate::fixtures::id_number(a.0, a.1), crate::fixtures::id_number(b.0, b.1));
            proptest::prop_assert_eq!(x.packed().cmp(&y.packed()), x.expose().cmp(y.expose()));
            let (m, n) = (crate::fixtures::mobile(a.0, a.1), crate::fixtures::mobile(b.0, b.1));
            proptest::prop_assert_eq!(m.packed().cmp(&n.packed()), m.expose().cmp(n.expose()));
        }
    }

    #[test]
    fn ref_id_packed_numbers_fit_and_tell_the_check_character_x_apart() {
        let x = IdNumber::parse("11010519491231002X").unwrap();
        let top = "99999999999999999X".bytes().fold(0u64, |n, b| {
            n * 11 + if b == b'X' { 10 } else { u64::from(b - b'0') }
        });
        assert_eq!(x.packed() % 11, 10, "X is the eleventh check value");
        assert!(
            x.packed() < top && top < u64::MAX / 2,
            "the largest fits: {top}"
        );
    }

    /// A valid ID number of 五华区 born on `birth`.
    fn id_born(birth: NaiveDate) -> String {
        let body = format!("530102{}123", birth.format("%Y%m%d"));
        format!("{body}{}", check_character(body.as_bytes()) as char)
    }

    #[test]
    fn ref_id_births_up_to_today_pass_and_later_ones_fail_on_the_real_clock() {
        let today = today_cst();
        let cases = [
            ("today", today, true),
            ("yesterday", today.pred_opt().unwrap(), true),
            ("tomorrow", today.succ_opt().unwrap(), false),
            (
                "the last day before the clock is read",
                day("2025-12-31"),
                true,
            ),
            ("the first day the clock is read", day("2026-01-01"), true),
            ("in 2099", day("2099-01-01"), false),
        ];
        for (name, birth, ok) in cases {
            let parsed = IdNumber::parse(id_born(birth));
            assert_eq!(parsed.is_ok(), ok, "{name}: {birth} → {parsed:?}");
            if !ok {
                assert_eq!(parsed.unwrap_err(), IdError::BirthDate, "{name}");
            }
        }
    }
}
