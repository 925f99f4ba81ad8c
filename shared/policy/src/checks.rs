//! 每班必查: a class's life and the three checks that move it on (CK-*).
//!
//! A filed class is `approved` (or `rejected`, for good). The district
//! office's 开班前验证 (pre-opening check) opens it: `in_training`. The
//! 培训中检查 (in-training check) is recorded during the class days and does
//! not end training; the class stays in training, and in every sampling run,
//! until its last class day has passed (`training_ended`, a state that follows
//! from the calendar, not from a request). The 培训后考核 (post-training
//! assessment) on or after the last class day makes it `assessed`; only then
//! may its vouchers be settled.
//!
//! Each check is dated by the officer (`at`: when it was carried out) and
//! recorded later (`recorded_at`). CK-WINDOW keeps both honest: a check lies
//! in its own part of the calendar (a pre-opening check before the first class
//! day and at most `ck_pre_opening_days` before it; an in-training check on a
//! class day; a post-training check on or after the last class day), never in
//! the future, and never more than `ck_backdate_hours` before it is recorded,
//! so three checks cannot be back-dated in minutes. Class days are local days
//! in China Standard Time (UTC+08:00).

use crate::params::{Applied, Parameters, names};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The rules of this module with their severity and source (POLICY.md).
pub mod rules {
    #![allow(missing_docs)]
    use crate::decision::{Rule, Severity::*};
    pub const CK_ORDER: Rule = Rule {
        id: "CK-ORDER",
        severity: Block,
        source: "plan 四.2 (每班必查)",
    };
    pub const CK_WINDOW: Rule = Rule {
        id: "CK-WINDOW",
        severity: Block,
        source: "plan 四.2 (每班必查); fraud pattern: back-dated checks",
    };
}

/// Where a class is, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassStatus {
    /// 已批准: may open once its pre-opening check passes.
    Approved,
    /// 未批准.
    Rejected,
    /// 培训中: the pre-opening check passed. Records written before the
    /// in-training check stopped ending training say `completed`; they are
    /// read as in training, which is what they are under the rule of today.
    #[serde(alias = "completed")]
    InTraining,
    /// 已考核: the post-training assessment passed; vouchers may be settled.
    Assessed,
}

impl ClassStatus {
    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        ClassPhase::from(self).name_zh()
    }

    /// The `snake_case` name.
    pub fn id(self) -> &'static str {
        ClassPhase::from(self).id()
    }
}

/// Where a class is on a given day: its stored status, with
/// `training_ended` once the last class day of a class in training is past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassPhase {
    /// 已批准.
    Approved,
    /// 未批准.
    Rejected,
    /// 培训中.
    InTraining,
    /// 培训已结束: the last class day is past; the assessment is not recorded yet.
    TrainingEnded,
    /// 已考核.
    Assessed,
}

impl From<ClassStatus> for ClassPhase {
    fn from(s: ClassStatus) -> Self {
        match s {
            ClassStatus::Approved => ClassPhase::Approved,
            ClassStatus::Rejected => ClassPhase::Rejected,
            ClassStatus::InTraining => ClassPhase::InTraining,
            ClassStatus::Assessed => ClassPhase::Assessed,
        }
    }
}

impl ClassPhase {
    /// Every phase, in the order of a class's life.
    pub const ALL: [ClassPhase; 5] = [
        ClassPhase::Approved,
        ClassPhase::Rejected,
        ClassPhase::InTraining,
        ClassPhase::TrainingEnded,
        ClassPhase::Assessed,
    ];

    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Approved => "已批准",
            Self::Rejected => "未批准",
            Self::InTraining => "培训中",
            Self::TrainingEnded => "培训已结束",
            Self::Assessed => "已考核",
        }
    }

    /// The `snake_case` name.
    pub fn id(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::InTraining => "in_training",
            Self::TrainingEnded => "training_ended",
            Self::Assessed => "assessed",
        }
    }

    /// Parses the `snake_case` name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.id() == s)
    }
}

/// The phase of a class with `status` and last class day `last_day` on `today`.
pub fn phase(status: ClassStatus, last_day: NaiveDate, today: NaiveDate) -> ClassPhase {
    match status {
        ClassStatus::InTraining if today > last_day => ClassPhase::TrainingEnded,
        s => s.into(),
    }
}

/// The three checks of 每班必查.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// 开班前验证.
    PreOpening,
    /// 培训中检查.
    InTraining,
    /// 培训后考核.
    PostAssessment,
}

impl CheckKind {
    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::PreOpening => "开班前验证",
            Self::InTraining => "培训中检查",
            Self::PostAssessment => "培训后考核",
        }
    }

    /// The `snake_case` name.
    pub fn id(self) -> &'static str {
        match self {
            Self::PreOpening => "pre_opening",
            Self::InTraining => "in_training",
            Self::PostAssessment => "post_assessment",
        }
    }

    /// CK-ORDER: the status a class must have for this check, and the status
    /// a passed check leaves it in. The in-training check does not end training.
    pub fn transition(self) -> (ClassStatus, ClassStatus) {
        match self {
            Self::PreOpening => (ClassStatus::Approved, ClassStatus::InTraining),
            Self::InTraining => (ClassStatus::InTraining, ClassStatus::InTraining),
            Self::PostAssessment => (ClassStatus::InTraining, ClassStatus::Assessed),
        }
    }
}

/// Result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// 合格: the class moves on.
    Passed,
    /// 不合格: recorded; the class stays where it is until a later check passes.
    Failed,
}

/// Midnight at the start of `day` in China Standard Time, as an instant.
pub fn cst_start(day: NaiveDate) -> DateTime<Utc> {
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+08:00 is a valid offset");
    cst.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// The part of the calendar a check of `kind` must lie in: from `earliest`
/// (inclusive) to `before` (exclusive), either end open when `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Earliest instant allowed.
    pub earliest: Option<DateTime<Utc>>,
    /// The check must be before this instant.
    pub before: Option<DateTime<Utc>>,
    /// Parameters that set it, as `name@since`.
    pub parameters: Vec<String>,
}

/// CK-WINDOW: where in the class's calendar a check of `kind` may lie.
/// Parameters are taken at the class's first day (its legal date).
pub fn window(
    kind: CheckKind,
    first_day: NaiveDate,
    last_day: NaiveDate,
    params: &Parameters,
) -> Window {
    match kind {
        CheckKind::PreOpening => {
            let days = params.at_or_first(names::CK_PRE_OPENING_DAYS, first_day);
            Window {
                earliest: Some(cst_start(first_day) - Duration::days(days.value.clamp(0, 366))),
                before: Some(cst_start(first_day)),
                parameters: vec![days.label()],
            }
        }
        CheckKind::InTraining => Window {
            earliest: Some(cst_start(first_day)),
            before: last_day.succ_opt().map(cst_start),
            parameters: Vec::new(),
        },
        CheckKind::PostAssessment => Window {
            earliest: Some(cst_start(last_day)),
            before: None,
            parameters: Vec::new(),
        },
    }
}

/// Which bound a check's date broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Dated after the moment it is recorded.
    NotInFuture,
    /// Dated more than `ck_backdate_hours` before it is recorded.
    BackdateLimit,
    /// Before the earliest instant of its window.
    WindowStart,
    /// At or after the end of its window.
    WindowEnd,
}

impl Bound {
    /// The `snake_case` name.
    pub fn id(self) -> &'static str {
        match self {
            Self::NotInFuture => "not_in_future",
            Self::BackdateLimit => "backdate_limit",
            Self::WindowStart => "window_start",
            Self::WindowEnd => "window_end",
        }
    }
}

/// Why a check cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckRefusal {
    /// CK-ORDER: the class is not in the status the check needs.
    #[error("CK-ORDER: a {} check needs a class {}; the class is {}", kind.id(), needed.id(), status.id())]
    OutOfOrder {
        /// The check.
        kind: CheckKind,
        /// Status the check needs.
        needed: ClassStatus,
        /// Status the class is in.
        status: ClassStatus,
    },
    /// CK-ORDER: the post-training assessment needs a passed in-training check.
    #[error("CK-ORDER: the post-training assessment needs a passed in-training check")]
    NoInTrainingCheck,
    /// CK-WINDOW: `at` lies outside its bound.
    #[error("CK-WINDOW: `at` breaks {}: the limit is {limit}", bound.id())]
    OutOfWindow {
        /// The bound broken.
        bound: Bound,
        /// The instant the bound is at.
        limit: DateTime<Utc>,
        /// Parameters that set the bound, as `name@since`.
        parameters: Vec<String>,
    },
}

impl CheckRefusal {
    /// The rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::OutOfOrder { .. } | Self::NoInTrainingCheck => rules::CK_ORDER.id,
            Self::OutOfWindow { .. } => rules::CK_WINDOW.id,
        }
    }
}

/// What a check is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFacts {
    /// Which check.
    pub kind: CheckKind,
    /// When the officer says it was carried out.
    pub at: DateTime<Utc>,
    /// When it is being recorded (the server's clock).
    pub recorded_at: DateTime<Utc>,
    /// The class's status.
    pub status: ClassStatus,
    /// Whether a passed in-training check is on record.
    pub in_training_passed: bool,
    /// First class day.
    pub first_day: NaiveDate,
    /// Last class day.
    pub last_day: NaiveDate,
}

/// CK-ORDER alone: whether a check of `kind` may be recorded on a class with
/// `status` (and whether a passed in-training check is on record), and the
/// status a passed one leaves it in.
pub fn decide_order(
    kind: CheckKind,
    status: ClassStatus,
    in_training_passed: bool,
) -> Result<ClassStatus, CheckRefusal> {
    let (needed, on_pass) = kind.transition();
    if status != needed {
        return Err(CheckRefusal::OutOfOrder {
            kind,
            needed,
            status,
        });
    }
    if kind == CheckKind::PostAssessment && !in_training_passed {
        return Err(CheckRefusal::NoInTrainingCheck);
    }
    Ok(on_pass)
}

/// What a check may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAllowed {
    /// The status a passed check leaves the class in.
    pub on_pass: ClassStatus,
    /// Parameters applied, as `name@since`.
    pub parameters: Vec<String>,
}

/// CK-ORDER and CK-WINDOW: whether a check may be recorded, and where a
/// passed one leaves the class. Order is decided first (a check the class is
/// not ready for is a conflict whatever its date), then the date.
pub fn decide_check(f: &CheckFacts, params: &Parameters) -> Result<CheckAllowed, CheckRefusal> {
    let on_pass = decide_order(f.kind, f.status, f.in_training_passed)?;
    let backdate: Applied = params.at_or_first(names::CK_BACKDATE_HOURS, f.first_day);
    let w = window(f.kind, f.first_day, f.last_day, params);
    let mut parameters = w.parameters.clone();
    parameters.push(backdate.label());
    let out = |bound, limit, parameters: Vec<String>| {
        Err(CheckRefusal::OutOfWindow {
            bound,
            limit,
            parameters,
        })
    };
    if f.at > f.recorded_at {
        return out(Bound::NotInFuture, f.recorded_at, Vec::new());
    }
    let oldest = f.recorded_at - Duration::hours(backdate.value.clamp(0, 24 * 366));
    if f.at < oldest {
        return out(Bound::BackdateLimit, oldest, vec![backdate.label()]);
    }
    if let Some(earliest) = w.earliest
        && f.at < earliest
    {
        return out(Bound::WindowStart, earliest, w.parameters);
    }
    if let Some(before) = w.before
        && f.at >= before
    {
        return out(Bound::WindowEnd, before, w.parameters);
    }
    Ok(CheckAllowed {
        on_pass,
        parameters,
    })
}

#[cfg(test)]
mod tests;
