//! The bureau's policy data as one typed value: parameters, the occupation
//! and project catalogue, the subsidy catalogue, the topics of CO-TOPICS, the
//! working-day calendar and the targets ([`PolicyData`]), and the changes the
//! bureau makes to it ([`Edit`]).
//!
//! The rules read a [`Policy`]: the data with the version it is
//! ([`PolicyRef`]: a number and the SHA-256 of the data), so that each decision
//! names the version it was evaluated against. The files under `data/` are
//! the defaults, version 1 ([`Policy::shipped`]); the store keeps the versions
//! that follow. Nothing here reads or writes anything: [`PolicyData::apply`]
//! turns one version and one edit into the next, or explains why not.

use crate::calendar::{Calendar, CalendarYear};
use crate::catalogue::{AssessmentBody, Catalogue, Occupation, Project};
use crate::decision::PolicyRef;
use crate::ids::AreaCode;
use crate::params::{DatedValue, Parameters, names};
use crate::reference::{Programme, Topic};
use crate::vouchers::{Subsidies, SubsidyEntry};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// A field of policy data (or of a request that changes it) that is wrong,
/// and why: answered with 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field (`min_hours.3`, `days_off[2]`).
    pub field: String,
    /// What is wrong, in English.
    pub detail: String,
}

impl FieldError {
    /// An error of `field`.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// The same error with its field inside `prefix` (`occupation` +
    /// `min_hours.3` = `occupation.min_hours.3`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// The topics CO-TOPICS requires of every schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    /// The topics, each once.
    pub required: Vec<Topic>,
    /// Where the list comes from.
    pub reference: String,
}

impl Topics {
    /// At least one topic, each once, a reference of 1 to 300 characters.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        if self.required.is_empty() {
            errs.push(FieldError::new("required", "at least one topic"));
        }
        for (i, t) in self.required.iter().enumerate() {
            if self.required[..i].contains(t) {
                errs.push(FieldError::new(format!("required[{i}]"), "listed twice"));
            }
        }
        if !crate::text::filled(&self.reference, 300) {
            errs.push(FieldError::new(
                "reference",
                "must be 1 to 300 characters, not all blank",
            ));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

/// A district's (or functional zone's) targets for one calendar year
/// (REF-TARGET: the plan's attachment, loaded as data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictTarget {
    /// The year.
    pub year: i32,
    /// County code or functional-zone id (REF-AREA).
    pub district: AreaCode,
    /// Trainings (人次).
    pub trainings: u64,
    /// People obtaining a 职业资格 or 职业技能等级 certificate.
    pub certificates: u64,
    /// Where the figures come from.
    pub reference: String,
}

/// A programme's targets over its own period (REF-PROGRAM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeTarget {
    /// The programme.
    pub programme: Programme,
    /// First day of the period.
    pub from: NaiveDate,
    /// Last day of the period.
    pub to: NaiveDate,
    /// Trainings (人次).
    pub trainings: u64,
    /// People certified, when the programme sets a figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<u64>,
    /// Where the figures come from.
    pub reference: String,
}

/// District and programme targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Per district and year.
    #[serde(default)]
    pub district: Vec<DistrictTarget>,
    /// Per programme and period.
    #[serde(default)]
    pub programme: Vec<ProgrammeTarget>,
}

/// Largest target figure accepted.
pub const MAX_TARGET: u64 = 100_000_000;

impl Targets {
    /// Years in [`crate::calendar::YEARS`], each district once a year,
    /// periods that run forwards and do not overlap within a programme,
    /// figures up to [`MAX_TARGET`], references filled.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        let filled = |r: &str| crate::text::filled(r, 300);
        for (i, t) in self.district.iter().enumerate() {
            let at = |f: &str| format!("district[{i}].{f}");
            if !crate::calendar::YEARS.contains(&t.year) {
                errs.push(FieldError::new(at("year"), "must be 2000 to 2100"));
            }
            if self.district[..i]
                .iter()
                .any(|o| o.year == t.year && o.district == t.district)
            {
                errs.push(FieldError::new(
                    at("district"),
                    format!("{} has a target for {} already", t.district, t.year),
                ));
            }
            for (f, n) in [("trainings", t.trainings), ("certificates", t.certificates)] {
                if n > MAX_TARGET {
                    errs.push(FieldError::new(at(f), format!("at most {MAX_TARGET}")));
                }
            }
            if !filled(&t.reference) {
                errs.push(FieldError::new(
                    at("reference"),
                    "must be 1 to 300 characters, not all blank",
                ));
            }
        }
        for (i, t) in self.programme.iter().enumerate() {
            let at = |f: &str| format!("programme[{i}].{f}");
            if t.to < t.from {
                errs.push(FieldError::new(at("to"), "must not be before from"));
            }
            if !crate::calendar::YEARS.contains(&t.from.year())
                || !crate::calendar::YEARS.contains(&t.to.year())
            {
                errs.push(FieldError::new(at("from"), "dates lie in 2000 to 2100"));
            }
            if self.programme[..i]
                .iter()
                .any(|o| o.programme == t.programme && o.from <= t.to && t.from <= o.to)
            {
                errs.push(FieldError::new(
                    at("from"),
                    "overlaps another period of the same programme",
                ));
            }
            if t.trainings > MAX_TARGET || t.certificates.is_some_and(|c| c > MAX_TARGET) {
                errs.push(FieldError::new(
                    at("trainings"),
                    format!("at most {MAX_TARGET}"),
                ));
            }
            if !filled(&t.reference) {
                errs.push(FieldError::new(
                    at("reference"),
                    "must be 1 to 300 characters, not all blank",
                ));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The target of `district` for `year`.
    pub fn district(&self, district: AreaCode, year: i32) -> Option<&DistrictTarget> {
        self.district
            .iter()
            .find(|t| t.district == district && t.year == year)
    }
}

/// Everything the bureau decides by, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyData {
    /// Dated parameters (CO-*, VO-*, SC-*, REF-TARGET).
    pub parameters: Parameters,
    /// Occupations, projects and assessment bodies (REF-OCC).
    pub catalogue: Catalogue,
    /// Subsidy standards (VO-AMOUNT).
    pub subsidies: Subsidies,
    /// Topics of CO-TOPICS.
    pub topics: Topics,
    /// Working-day calendar (CO-LEAD).
    pub calendar: Calendar,
    /// District and programme targets.
    pub targets: Targets,
}

/// `data/*.toml` as one `PolicyData` in JSON, made by `build.rs`.
const SHIPPED_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/policy.json"));

/// Whether a change reaches back before `today`.
fn reaches_back(since: NaiveDate, today: NaiveDate) -> bool {
    since <= today
}

impl PolicyData {
    /// The data shipped with this build (`data/*.toml`): the defaults.
    pub fn shipped() -> &'static PolicyData {
        static D: OnceLock<PolicyData> = OnceLock::new();
        D.get_or_init(Self::read_shipped)
    }

    /// Reads the shipped data anew, uncached.
    pub fn read_shipped() -> PolicyData {
        Self::from_json(SHIPPED_JSON.as_bytes()).expect("the shipped policy data is valid")
    }

    /// The shipped data as JSON, as version 1 stores it.
    pub fn shipped_json() -> &'static [u8] {
        SHIPPED_JSON.as_bytes()
    }

    /// Reads policy data from its JSON (a stored version's, or the shipped).
    /// One function, not inlined: a component carries one copy of the code
    /// that reads the policy data, whoever calls it.
    #[inline(never)]
    pub fn from_json(bytes: &[u8]) -> Result<PolicyData, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// SHA-256 (hex) of a version's data as stored: what a version is known by.
    pub fn digest_of_json(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The data's JSON, as a version after the first stores it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("policy data serialises")
    }

    /// SHA-256 (hex) of [`PolicyData::to_json`]: the digest of a version
    /// after the first (version 1's is that of the shipped JSON).
    pub fn digest(&self) -> String {
        Self::digest_of_json(&self.to_json())
    }

    /// Every part checked; fields named from the top (`catalogue.occupation[2].min_hours.3`).
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        for (name, p) in self.parameters.all() {
            for (i, v) in p.values.iter().enumerate() {
                if let Err(e) = Parameters::check_value(name, v) {
                    let at = format!("parameters.{name}.values[{i}]");
                    errs.extend(e.into_iter().map(|e| e.under(&at)));
                }
            }
        }
        errs.extend(apprentice_months(&self.parameters));
        let parts = [
            ("catalogue", self.catalogue.check()),
            ("subsidies", self.subsidies.check(&self.catalogue)),
            ("topics", self.topics.check()),
            ("targets", self.targets.check()),
        ];
        for (at, r) in parts {
            if let Err(e) = r {
                errs.extend(e.into_iter().map(|e| e.under(at)));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The data after `edit`, made on `today`.
    ///
    /// A dated value that holds on or before `today` and differs from the
    /// value it replaces there (a parameter value, a subsidy standard, a
    /// year's calendar that has begun) would change decisions already made:
    /// it is refused ([`EditError::Retroactive`]) unless `retroactive` says
    /// so, and the answer says whether it was. Undated entries (occupations,
    /// projects, topics, targets) hold for decisions made from the change
    /// on; decisions already made keep what they recorded.
    pub fn apply(
        &self,
        edit: &Edit,
        today: NaiveDate,
        retroactive: bool,
    ) -> Result<Edited, EditError> {
        let mut next = self.clone();
        let mut reaches = None::<(String, String)>;
        match edit {
            Edit::ParameterValue { name, value } => {
                if !names::ALL.contains(&name.as_str()) {
                    return Err(EditError::Unknown("no parameter of this name".into()));
                }
                Parameters::check_value(name, value).map_err(EditError::Invalid)?;
                let before = self.parameters.at(name, value.since).ok();
                next.parameters = self
                    .parameters
                    .with_added(name, value.clone())
                    .ok_or_else(|| EditError::Unknown("no parameter of this name".into()))?;
                let e = apprentice_months(&next.parameters);
                if !e.is_empty() {
                    return Err(EditError::Invalid(
                        e.into_iter()
                            .map(|e| FieldError::new("value", e.detail))
                            .collect(),
                    ));
                }
                if reaches_back(value.since, today)
                    && before.as_ref().map(|a| a.value) != Some(value.value)
                {
                    let was = before.map_or_else(
                        || "no value".to_string(),
                        |a| format!("{} ({})", a.value, a.label()),
                    );
                    reaches = Some((
                        "since".into(),
                        format!(
                            "{name} from {} (on or before today, {today}) changes the value decisions from that date used: {was} becomes {}",
                            value.since, value.value
                        ),
                    ));
                }
            }
            Edit::Occupation {
                occupation,
                assessment_bodies,
            } => {
                next.catalogue = self
                    .catalogue
                    .with_occupation(occupation.clone(), assessment_bodies.clone())
                    .map_err(EditError::Invalid)?;
                // Subsidy entries of the occupation must still name a level it trains.
                if let Err(e) = next.subsidies.check(&next.catalogue) {
                    return Err(EditError::Invalid(
                        e.into_iter()
                            .map(|e| {
                                FieldError::new(
                                    "occupation.levels",
                                    format!(
                                        "a subsidy standard needs a level no longer trained ({}: {})",
                                        e.field, e.detail
                                    ),
                                )
                            })
                            .collect(),
                    ));
                }
            }
            Edit::Project {
                project,
                assessment_bodies,
            } => {
                next.catalogue = self
                    .catalogue
                    .with_project(project.clone(), assessment_bodies.clone())
                    .map_err(EditError::Invalid)?;
            }
            Edit::Subsidy(entry) => {
                Subsidies::check_entry(entry, &self.catalogue).map_err(|e| {
                    EditError::Invalid(e.into_iter().map(|e| e.under("subsidy")).collect())
                })?;
                let key = entry.key().expect("checked: the entry has a key");
                let before = self.subsidies.at(&key, entry.since);
                next.subsidies = self.subsidies.with_entry(entry.clone());
                let same = before.is_some_and(|b| {
                    b.amount_fen == entry.amount_fen
                        && b.fund == entry.fund
                        && b.uplifts == entry.uplifts
                });
                if reaches_back(entry.since, today) && !same {
                    reaches = Some((
                        "subsidy.since".into(),
                        format!(
                            "the standard for {} from {} (on or before today, {today}) changes the amount of vouchers issued from that date",
                            key.label(),
                            entry.since
                        ),
                    ));
                }
            }
            Edit::CalendarYear(year) => {
                next.calendar = self
                    .calendar
                    .with_year(year.clone())
                    .map_err(EditError::Invalid)?;
                let first = NaiveDate::from_ymd_opt(year.year, 1, 1).expect("checked year");
                let same = self
                    .calendar
                    .year(year.year)
                    .is_some_and(|old| old.same_days(year));
                if reaches_back(first, today) && !same {
                    reaches = Some((
                        "year".into(),
                        format!(
                            "{} has begun (today is {today}): other working days change CO-LEAD decisions already made",
                            year.year
                        ),
                    ));
                }
            }
            Edit::Targets(t) => {
                t.check().map_err(EditError::Invalid)?;
                next.targets = t.clone();
            }
            Edit::Topics(t) => {
                t.check().map_err(EditError::Invalid)?;
                next.topics = t.clone();
            }
        }
        if &next == self {
            return Err(EditError::Unchanged);
        }
        if let Some((field, detail)) = reaches {
            if !retroactive {
                return Err(EditError::Retroactive { field, detail });
            }
            return Ok(Edited {
                data: next,
                retroactive: true,
            });
        }
        Ok(Edited {
            data: next,
            retroactive: false,
        })
    }
}

/// CO-APPRENTICE: the shortest training is not longer than the longest on
/// any date either of them changes.
fn apprentice_months(p: &Parameters) -> Vec<FieldError> {
    let (min, max) = (
        names::CO_APPRENTICE_MIN_MONTHS,
        names::CO_APPRENTICE_MAX_MONTHS,
    );
    let mut dates = p.change_dates(min);
    dates.extend(p.change_dates(max));
    dates.sort();
    dates.dedup();
    dates
        .into_iter()
        .filter_map(|d| {
            let (a, b) = (p.at(min, d).ok()?, p.at(max, d).ok()?);
            (a.value > b.value).then(|| {
                FieldError::new(
                    format!("parameters.{min}"),
                    format!(
                        "from {d} {min} ({}) would exceed {max} ({})",
                        a.value, b.value
                    ),
                )
            })
        })
        .collect()
}

/// One change the bureau makes to the policy data.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Add a dated value to a parameter (replacing one of the same date).
    ParameterValue {
        /// The parameter.
        name: String,
        /// The value.
        value: DatedValue,
    },
    /// Add or change an occupation, describing the assessment bodies it names.
    Occupation {
        /// The entry.
        occupation: Occupation,
        /// Assessment bodies to describe (added, or renamed by credit code).
        assessment_bodies: Vec<AssessmentBody>,
    },
    /// Add or change a project (SYB, 网络创业), describing its assessment bodies.
    Project {
        /// The entry.
        project: Project,
        /// Assessment bodies to describe.
        assessment_bodies: Vec<AssessmentBody>,
    },
    /// Add a dated subsidy standard (replacing one of the same key and date).
    Subsidy(SubsidyEntry),
    /// Load (or replace) one year's calendar.
    CalendarYear(CalendarYear),
    /// Replace the targets.
    Targets(Targets),
    /// Replace the topics of CO-TOPICS.
    Topics(Topics),
}

impl Edit {
    /// The audit action of the edit (`policy.parameter.value_added`).
    pub fn action(&self) -> &'static str {
        match self {
            Edit::ParameterValue { .. } => "policy.parameter.value_added",
            Edit::Occupation { .. } => "policy.occupation.put",
            Edit::Project { .. } => "policy.project.put",
            Edit::Subsidy(_) => "policy.subsidy.added",
            Edit::CalendarYear(_) => "policy.calendar.loaded",
            Edit::Targets(_) => "policy.targets.loaded",
            Edit::Topics(_) => "policy.topics.put",
        }
    }

    /// What the edit is about (`co_min_class_hours@2023-01-01`, `occupation:4-10-01-05`).
    pub fn subject(&self) -> String {
        match self {
            Edit::ParameterValue { name, value } => format!("{name}@{}", value.since),
            Edit::Occupation { occupation, .. } => format!("occupation:{}", occupation.code),
            Edit::Project { project, .. } => format!("project:{}", project.id),
            Edit::Subsidy(e) => format!(
                "subsidy:{}@{}",
                e.key().map(|k| k.label()).unwrap_or_default(),
                e.since
            ),
            Edit::CalendarYear(y) => format!("calendar:{}", y.year),
            Edit::Targets(_) => "targets".into(),
            Edit::Topics(_) => "topics".into(),
        }
    }
}

/// The data after an edit.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    /// The new data.
    pub data: PolicyData,
    /// Whether it changes what holds on or before the day of the change
    /// (allowed only when the request said so).
    pub retroactive: bool,
}

/// Why an edit was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The edit names something that does not exist (a parameter).
    #[error("{0}")]
    Unknown(String),
    /// Fields are wrong.
    #[error("{} field(s) are wrong", .0.len())]
    Invalid(Vec<FieldError>),
    /// The change would alter decisions already made and the request did not say it may.
    #[error("{detail}")]
    Retroactive {
        /// The field that dates the change.
        field: String,
        /// Why it reaches back.
        detail: String,
    },
    /// The data would be the same.
    #[error("the policy data already holds this")]
    Unchanged,
}

/// The policy the rules read: data and which version it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Version number and digest.
    pub reference: PolicyRef,
    /// The data.
    pub data: PolicyData,
}

impl Policy {
    /// Version `version` of `data` (its digest computed).
    pub fn new(version: u64, data: PolicyData) -> Self {
        Self {
            reference: PolicyRef {
                version,
                digest: data.digest(),
            },
            data,
        }
    }

    /// The shipped defaults as version 1.
    pub fn shipped() -> &'static Policy {
        static P: OnceLock<Policy> = OnceLock::new();
        P.get_or_init(|| Policy {
            reference: PolicyRef {
                version: 1,
                digest: PolicyData::digest_of_json(PolicyData::shipped_json()),
            },
            data: PolicyData::read_shipped(),
        })
    }

    /// The parameters.
    pub fn parameters(&self) -> &Parameters {
        &self.data.parameters
    }

    /// The occupation catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.data.catalogue
    }

    /// The subsidy catalogue.
    pub fn subsidies(&self) -> &Subsidies {
        &self.data.subsidies
    }

    /// The same policy with one parameter value added (tests, what-if).
    pub fn with_value(&self, name: &str, value: DatedValue) -> Policy {
        let mut data = self.data.clone();
        data.parameters = data.parameters.clone().with_value(name, value);
        Policy::new(self.reference.version + 1, data)
    }
}

#[cfg(test)]
mod tests;
