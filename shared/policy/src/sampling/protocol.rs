//! How a sampling run's seed is fixed so that nobody can steer it (SC-DRAW),
//! which classes a run covers (SC-EVERY), and who may see a class's sample
//! before its calls are done.
//!
//! **Windows.** A run is named by its calendar window in China Standard Time:
//! a day (`2022-06-20`) or an ISO week (`2022-W25`), as the dated parameter
//! `sc_window_days` (1 or 7) says. The same window is always the same run.
//!
//! **Commit, freeze, reveal.** At creation the server draws 32 random bytes
//! and publishes only their SHA-256, the *commitment*. The population of every
//! class is frozen next, page by page. Only once the freeze is complete may a
//! public value (digits drawn in public, a lottery result) be given, once; the
//! run seed is then `hex(SHA-256(bytes ‖ ":" ‖ public value))`; when none is
//! given within `sc_public_value_wait_minutes` of the freeze, the public value
//! is the empty string. The bytes are revealed with the seed. The colon keeps
//! the seed from ever equalling the commitment (with "the bytes alone" hashed,
//! the seed would be public from the run's creation).
//!
//! **One seed per class.** Each class is sampled with its own seed,
//! `hex(SHA-256(run seed ‖ ":" ‖ class id))`, so that the part of a run that
//! is published to one institution (once its class's calls are closed) lets it
//! recompute its own sample and nobody else's. The run seed and the revealed
//! bytes are shown to the bureau, and to everyone once every call of the run
//! is closed; then anyone can check the whole chain: commitment → bytes →
//! run seed → class seeds → samples.

use crate::params::{Parameters, names};
use chrono::{DateTime, Datelike, Duration, IsoWeek, NaiveDate, Utc, Weekday};
use sha2::{Digest, Sha256};

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The number of random bytes a run commits to.
pub const COMMITTED_BYTES: usize = 32;

/// The commitment to `bytes`: `hex(SHA-256(bytes))`.
pub fn commitment(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The run seed: `hex(SHA-256(bytes ‖ ":" ‖ public_value))`, the public value
/// empty when none was given.
pub fn run_seed(bytes: &[u8], public_value: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(b":");
    h.update(public_value.unwrap_or("").as_bytes());
    hex(&h.finalize())
}

/// A class's seed in a run: `hex(SHA-256(run_seed ‖ ":" ‖ class_id))`.
pub fn class_seed(run_seed: &str, class_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(run_seed.as_bytes());
    h.update(b":");
    h.update(class_id.as_bytes());
    hex(&h.finalize())
}

/// Parses lower-case hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `value` is an acceptable public value: 1 to 256 printable ASCII characters.
pub fn public_value_ok(value: &str) -> bool {
    (1..=256).contains(&value.len()) && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// A run's calendar window in China Standard Time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// One day.
    Day(NaiveDate),
    /// One ISO week.
    Week(IsoWeek),
}

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not `YYYY-MM-DD` of a real day, nor `YYYY-Www` of a real ISO week.
    #[error("a window is a day YYYY-MM-DD or an ISO week YYYY-Www that exists")]
    Malformed,
    /// A real window, but not of the kind `sc_window_days` asks for.
    #[error("runs are {expected} windows (sc_window_days)")]
    WrongKind {
        /// `day` or `week`.
        expected: &'static str,
    },
}

impl Window {
    /// Parses a day `2022-06-20` or an ISO week `2022-W25`, either that exists.
    pub fn parse(s: &str) -> Result<Window, WindowError> {
        let b = s.as_bytes();
        if b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && s.bytes().filter(|c| c.is_ascii_digit()).count() == 8
        {
            return NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Window::Day)
                .map_err(|_| WindowError::Malformed);
        }
        if b.len() == 8 && b[4] == b'-' && b[5] == b'W' {
            let year: i32 = s[..4].parse().map_err(|_| WindowError::Malformed)?;
            if !s[..4].bytes().all(|c| c.is_ascii_digit())
                || !s[6..].bytes().all(|c| c.is_ascii_digit())
            {
                return Err(WindowError::Malformed);
            }
            let week: u32 = s[6..].parse().map_err(|_| WindowError::Malformed)?;
            return NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
                .map(|d| Window::Week(d.iso_week()))
                .ok_or(WindowError::Malformed);
        }
        Err(WindowError::Malformed)
    }

    /// Parses `s` and checks it is of the kind `sc_window_days` gives on `today`.
    pub fn parse_for(
        s: &str,
        params: &Parameters,
        today: NaiveDate,
    ) -> Result<Window, WindowError> {
        let w = Window::parse(s)?;
        let days = params.at_or_first(names::SC_WINDOW_DAYS, today).value;
        match (w, days) {
            (Window::Day(_), 1) | (Window::Week(_), 7) => Ok(w),
            (_, 7) => Err(WindowError::WrongKind { expected: "week" }),
            _ => Err(WindowError::WrongKind { expected: "day" }),
        }
    }

    /// The run id: the window as written canonically.
    pub fn id(&self) -> String {
        match self {
            Window::Day(d) => d.format("%Y-%m-%d").to_string(),
            Window::Week(w) => format!("{:04}-W{:02}", w.year(), w.week()),
        }
    }

    /// First and last day of the window.
    pub fn days(&self) -> (NaiveDate, NaiveDate) {
        match self {
            Window::Day(d) => (*d, *d),
            Window::Week(w) => {
                let monday = NaiveDate::from_isoywd_opt(w.year(), w.week(), Weekday::Mon)
                    .expect("a parsed ISO week exists");
                (monday, monday + Duration::days(6))
            }
        }
    }
}

/// SC-EVERY: whether a class is in a run: it is in training (its pre-opening
/// check passed, its assessment not recorded) and its class days, from
/// `first_day` to `last_day`, overlap the window's days.
pub fn in_run(
    in_training: bool,
    first_day: NaiveDate,
    last_day: NaiveDate,
    window: (NaiveDate, NaiveDate),
) -> bool {
    in_training && first_day <= window.1 && window.0 <= last_day
}

/// Where a run's seed stands once the population is frozen (SC-DRAW).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedStep {
    /// A public value was given: fix the seed with it.
    WithPublicValue(String),
    /// None was given and the wait is over: fix the seed with the bytes alone.
    WithoutPublicValue,
    /// Wait for a public value until this instant.
    AwaitPublicValue {
        /// When the wait ends.
        until: DateTime<Utc>,
    },
}

/// SC-DRAW: what to do with the seed of a run frozen at `frozen_at`, given the
/// public value offered so far, on `now`; the wait is `sc_public_value_wait_minutes`
/// as of `evaluated_on`.
pub fn seed_step(
    public_value: Option<&str>,
    frozen_at: DateTime<Utc>,
    now: DateTime<Utc>,
    params: &Parameters,
    evaluated_on: NaiveDate,
) -> SeedStep {
    if let Some(v) = public_value {
        return SeedStep::WithPublicValue(v.to_string());
    }
    let wait = params
        .at_or_first(names::SC_PUBLIC_VALUE_WAIT_MINUTES, evaluated_on)
        .value
        .clamp(0, 7 * 24 * 60);
    let until = frozen_at + Duration::minutes(wait);
    if now >= until {
        SeedStep::WithoutPublicValue
    } else {
        SeedStep::AwaitPublicValue { until }
    }
}

/// Who asks to see a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer<'a> {
    /// The bureau: everything.
    Bureau,
    /// A district office: the classes of its district.
    District(&'a str),
    /// An institution: its own classes, once their calls are closed.
    Institution(&'a str),
    /// Anyone else (an inspector sees their own tasks on their call list only,
    /// a scheduler drives runs): the public part.
    Other,
}

/// Whether `viewer` sees the sample of a class (its chosen ids, tickets,
/// class seed, task states) of `district` and `institution`, whose calls in
/// this run are all closed or not.
pub fn sees_sample(
    viewer: Viewer<'_>,
    district: &str,
    institution: &str,
    calls_closed: bool,
) -> bool {
    match viewer {
        Viewer::Bureau => true,
        Viewer::District(d) => d == district,
        Viewer::Institution(i) => i == institution && calls_closed,
        Viewer::Other => false,
    }
}

/// Whether `viewer` sees the run seed and the revealed bytes: the bureau
/// always, everyone once every call of the run is closed.
pub fn sees_seed(viewer: Viewer<'_>, run_closed: bool) -> bool {
    matches!(viewer, Viewer::Bureau) || run_closed
}

#[cfg(test)]
mod tests;
