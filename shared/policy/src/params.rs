//! Policy parameters as dated data, in the manner of OpenFisca.
//!
//! Every parameter is a list of values, each holding from its `since` date
//! until the next one, each with its reference. Rules ask for a parameter at a
//! legal date and get an [`Applied`] value that remembers which value decided,
//! so a decision can say `co_min_class_hours@2022-04-22`. The shipped values
//! in `data/parameters.toml` are the defaults; the values in force are part of
//! the bureau's stored policy data ([`crate::data`]).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Names of the parameters the rules use. [`Parameters::from_toml`] refuses a file that lacks one.
pub mod names {
    #![allow(missing_docs)]
    pub const CO_MIN_CLASS_HOURS: &str = "co_min_class_hours";
    pub const CO_MAX_CLASS_SIZE: &str = "co_max_class_size";
    pub const CO_MAX_CLASS_SIZE_ENTREPRENEURSHIP: &str = "co_max_class_size_entrepreneurship";
    pub const CO_MAX_DAILY_HOURS: &str = "co_max_daily_hours";
    pub const CO_ENTRY_SHARE_LIMIT_PERCENT: &str = "co_entry_share_limit_percent";
    pub const CO_LEAD_WORKING_DAYS: &str = "co_lead_working_days";
    pub const CO_APPRENTICE_MIN_MONTHS: &str = "co_apprentice_min_months";
    pub const CO_APPRENTICE_MAX_MONTHS: &str = "co_apprentice_max_months";
    pub const CO_APPRENTICE_MIN_LEVEL: &str = "co_apprentice_min_level";
    pub const CO_SHARED_PHONE_LIMIT: &str = "co_shared_phone_limit";
    pub const VO_MAX_PER_YEAR: &str = "vo_max_per_year";
    pub const VO_VALID_MONTHS: &str = "vo_valid_months";
    pub const VO_ISSUE_LEASE_SECONDS: &str = "vo_issue_lease_seconds";
    pub const SC_MIN_SAMPLE: &str = "sc_min_sample";
    pub const SC_RATE_PERCENT: &str = "sc_rate_percent";
    pub const SC_RAISED_RATE_PERCENT: &str = "sc_raised_rate_percent";
    pub const SC_DETECT_TARGET_PERCENT: &str = "sc_detect_target_percent";
    pub const SC_DETECT_SHARE_PERCENT: &str = "sc_detect_share_percent";
    pub const SC_CALL_ATTEMPTS: &str = "sc_call_attempts";
    pub const SC_UNREACHABLE_SHARE_PERCENT: &str = "sc_unreachable_share_percent";
    pub const SC_REPEAT_CLASSES: &str = "sc_repeat_classes";
    pub const REF_TARGET_TRAININGS: &str = "ref_target_trainings";
    pub const REF_TARGET_CERTIFICATES: &str = "ref_target_certificates";
    pub const CK_PRE_OPENING_DAYS: &str = "ck_pre_opening_days";
    pub const CK_BACKDATE_HOURS: &str = "ck_backdate_hours";
    pub const VO_FOUR_EYES: &str = "vo_four_eyes";
    pub const SC_WINDOW_DAYS: &str = "sc_window_days";
    pub const SC_PUBLIC_VALUE_WAIT_MINUTES: &str = "sc_public_value_wait_minutes";
    pub const ID_RETAIN_DAYS: &str = "id_retain_days";

    /// Every name above.
    pub const ALL: &[&str] = &[
        CO_MIN_CLASS_HOURS,
        CO_MAX_CLASS_SIZE,
        CO_MAX_CLASS_SIZE_ENTREPRENEURSHIP,
        CO_MAX_DAILY_HOURS,
        CO_ENTRY_SHARE_LIMIT_PERCENT,
        CO_LEAD_WORKING_DAYS,
        CO_APPRENTICE_MIN_MONTHS,
        CO_APPRENTICE_MAX_MONTHS,
        CO_APPRENTICE_MIN_LEVEL,
        CO_SHARED_PHONE_LIMIT,
        VO_MAX_PER_YEAR,
        VO_VALID_MONTHS,
        VO_ISSUE_LEASE_SECONDS,
        SC_MIN_SAMPLE,
        SC_RATE_PERCENT,
        SC_RAISED_RATE_PERCENT,
        SC_DETECT_TARGET_PERCENT,
        SC_DETECT_SHARE_PERCENT,
        SC_CALL_ATTEMPTS,
        SC_UNREACHABLE_SHARE_PERCENT,
        SC_REPEAT_CLASSES,
        REF_TARGET_TRAININGS,
        REF_TARGET_CERTIFICATES,
        CK_PRE_OPENING_DAYS,
        CK_BACKDATE_HOURS,
        VO_FOUR_EYES,
        SC_WINDOW_DAYS,
        SC_PUBLIC_VALUE_WAIT_MINUTES,
        ID_RETAIN_DAYS,
    ];
}

/// Why a parameter file or a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The TOML did not have the documented shape.
    #[error("parameter file is malformed: {0}")]
    Malformed(String),
    /// A parameter the rules need is missing.
    #[error("parameter {0} is missing")]
    Missing(String),
    /// No value of the parameter holds at the date asked.
    #[error("parameter {name} has no value on {date}")]
    NotYetInForce {
        /// The parameter.
        name: String,
        /// The date asked.
        date: NaiveDate,
    },
}

/// One dated value of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedValue {
    /// First day the value holds.
    pub since: NaiveDate,
    /// The value (whole numbers: hours, percent, trainees, fen).
    pub value: i64,
    /// Where the value comes from.
    pub reference: String,
}

/// One parameter with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// What the parameter means, with its rule id.
    pub description: String,
    /// Unit of the value.
    pub unit: String,
    /// Values in any order; sorted by date on load.
    pub values: Vec<DatedValue>,
}

/// A parameter value as applied to one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Parameter name.
    pub name: String,
    /// The value that held.
    pub value: i64,
    /// From when it held.
    pub since: NaiveDate,
    /// Its reference.
    pub reference: String,
}

impl Applied {
    /// `name@since`, as decisions cite it.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.since)
    }
}

/// The full set of parameters. In JSON: the map of names to [`Parameter`]s,
/// checked on reading (every name of [`names::ALL`] with a value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, Parameter>",
    into = "BTreeMap<String, Parameter>"
)]
pub struct Parameters {
    params: BTreeMap<String, Parameter>,
}

impl TryFrom<BTreeMap<String, Parameter>> for Parameters {
    type Error = ParamError;
    fn try_from(params: BTreeMap<String, Parameter>) -> Result<Self, ParamError> {
        Parameters::checked(params)
    }
}

impl From<Parameters> for BTreeMap<String, Parameter> {
    fn from(p: Parameters) -> Self {
        p.params
    }
}

/// Earliest and latest `since` a value may carry.
pub fn since_bounds() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date"),
        NaiveDate::from_ymd_opt(2100, 12, 31).expect("a date"),
    )
}

/// The values `name` may take, as (least, greatest).
pub fn bounds(name: &str) -> (i64, i64) {
    use names::*;
    match name {
        VO_FOUR_EYES => (0, 1),
        SC_WINDOW_DAYS => (1, 7),
        CO_APPRENTICE_MIN_LEVEL => (1, 5),
        CO_MAX_CLASS_SIZE
        | CO_MAX_CLASS_SIZE_ENTREPRENEURSHIP
        | CO_MAX_DAILY_HOURS
        | CO_SHARED_PHONE_LIMIT
        | VO_MAX_PER_YEAR
        | VO_VALID_MONTHS
        | VO_ISSUE_LEASE_SECONDS
        | SC_MIN_SAMPLE
        | SC_CALL_ATTEMPTS
        | SC_REPEAT_CLASSES
        | ID_RETAIN_DAYS => (1, 1_000_000),
        n if n.ends_with("_percent") => (0, 100),
        _ => (0, 1_000_000_000),
    }
}

#[cfg(test)]
const SHIPPED: &str = include_str!("../data/parameters.toml");

impl Parameters {
    /// The parameters shipped with this build (`data/parameters.toml`).
    pub fn shipped() -> &'static Parameters {
        &crate::data::PolicyData::shipped().parameters
    }

    /// Reads the shipped parameters anew, uncached.
    pub fn read_shipped() -> Parameters {
        crate::data::PolicyData::read_shipped().parameters
    }

    /// Parses a parameter file; every name in [`names::ALL`] must be present with at least one value.
    pub fn from_toml(text: &str) -> Result<Self, ParamError> {
        let params: BTreeMap<String, Parameter> =
            toml::from_str(text).map_err(|e| ParamError::Malformed(e.to_string()))?;
        Self::checked(params)
    }

    fn checked(mut params: BTreeMap<String, Parameter>) -> Result<Self, ParamError> {
        for name in names::ALL {
            match params.get(*name) {
                Some(p) if !p.values.is_empty() => {}
                _ => return Err(ParamError::Missing((*name).to_string())),
            }
        }
        for p in params.values_mut() {
            p.values.sort_by_key(|v| v.since);
        }
        Ok(Self { params })
    }

    /// The value of `name` in force on `date`.
    pub fn at(&self, name: &str, date: NaiveDate) -> Result<Applied, ParamError> {
        let p = self
            .params
            .get(name)
            .ok_or_else(|| ParamError::Missing(name.to_string()))?;
        let v = p
            .values
            .iter()
            .rev()
            .find(|v| v.since <= date)
            .ok_or_else(|| ParamError::NotYetInForce {
                name: name.to_string(),
                date,
            })?;
        Ok(Applied {
            name: name.to_string(),
            value: v.value,
            since: v.since,
            reference: v.reference.clone(),
        })
    }

    /// The date of the first value of `name` (None for an unknown name).
    pub fn first_since(&self, name: &str) -> Option<NaiveDate> {
        self.params.get(name)?.values.first().map(|v| v.since)
    }

    /// The value of `name` on `date`, or the earliest value when `date` precedes all of them.
    ///
    /// Only for dates already known to be in force: class decisions first
    /// check every parameter they read with [`Parameters::at`] (CO-INFORCE
    /// blocks a class dated before the plan's first values), and vouchers,
    /// checks and spot-checks only follow a class so decided. Never the way
    /// to decide a date before the first value: there is no value there.
    pub fn at_or_first(&self, name: &str, date: NaiveDate) -> Applied {
        match self.at(name, date) {
            Ok(a) => a,
            Err(_) => {
                let p = &self.params[name];
                let v = &p.values[0];
                Applied {
                    name: name.to_string(),
                    value: v.value,
                    since: v.since,
                    reference: v.reference.clone(),
                }
            }
        }
    }

    /// Adds a dated value (tests and what-if; the bureau adds values through
    /// [`crate::data::Edit::ParameterValue`]).
    pub fn with_value(mut self, name: &str, value: DatedValue) -> Self {
        if let Some(p) = self.params.get_mut(name) {
            p.values.push(value);
            p.values.sort_by_key(|v| v.since);
        }
        self
    }

    /// Checks one dated value for `name` (a known parameter): its date in
    /// [`since_bounds`], its value in [`bounds`] (`sc_window_days` 1 or 7),
    /// a reference of 1 to 300 characters. Fields are named as in the value.
    pub fn check_value(name: &str, v: &DatedValue) -> Result<(), Vec<crate::data::FieldError>> {
        use crate::data::FieldError;
        let mut errs = Vec::new();
        let (first, last) = since_bounds();
        if v.since < first || v.since > last {
            errs.push(FieldError::new(
                "since",
                format!("must lie between {first} and {last}"),
            ));
        }
        let (lo, hi) = bounds(name);
        if v.value < lo || v.value > hi {
            errs.push(FieldError::new(
                "value",
                format!("{name} takes values from {lo} to {hi}"),
            ));
        } else if name == names::SC_WINDOW_DAYS && ![1, 7].contains(&v.value) {
            errs.push(FieldError::new(
                "value",
                "sc_window_days is 1 (a day) or 7 (an ISO week)",
            ));
        }
        if !crate::text::filled(&v.reference, 300) {
            errs.push(FieldError::new(
                "reference",
                "must be 1 to 300 characters, not all blank",
            ));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The parameters with `value` added to `name`, replacing a value of the
    /// same `since`; `None` when `name` is not a parameter.
    pub fn with_added(&self, name: &str, value: DatedValue) -> Option<Parameters> {
        let mut next = self.clone();
        let p = next.params.get_mut(name)?;
        p.values.retain(|v| v.since != value.since);
        p.values.push(value);
        p.values.sort_by_key(|v| v.since);
        Some(next)
    }

    /// The dates on which some value of `name` begins.
    pub fn change_dates(&self, name: &str) -> Vec<NaiveDate> {
        self.params
            .get(name)
            .map(|p| p.values.iter().map(|v| v.since).collect())
            .unwrap_or_default()
    }

    /// Every parameter, for publishing.
    pub fn all(&self) -> &BTreeMap<String, Parameter> {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn shipped_parameters_hold_from_the_plan_date() {
        let p = Parameters::shipped();
        for name in names::ALL {
            let a = p.at(name, day("2022-04-22")).unwrap();
            assert_eq!(a.since, day("2022-04-22"), "{name}");
            assert!(!a.reference.is_empty(), "{name} has a reference");
        }
        assert!(matches!(
            p.at(names::CO_MIN_CLASS_HOURS, day("2022-04-21")),
            Err(ParamError::NotYetInForce { .. })
        ));
    }

    #[test]
    fn ref_target_ships_the_plans_2022_city_targets() {
        let p = Parameters::shipped();
        let on = day("2022-04-22");
        let trainings = p.at(names::REF_TARGET_TRAININGS, on).unwrap();
        let certificates = p.at(names::REF_TARGET_CERTIFICATES, on).unwrap();
        assert_eq!(
            trainings.value, 155_200,
            "REF-TARGET trainings, plan 一(一)"
        );
        assert_eq!(
            certificates.value, 110_000,
            "REF-TARGET certificates, plan 四.1"
        );
        assert!(
            p.at(names::REF_TARGET_TRAININGS, day("2022-04-21"))
                .is_err(),
            "REF-TARGET holds from the plan's date"
        );
    }

    #[test]
    fn a_dated_change_applies_only_from_its_date() {
        let p = Parameters::shipped().clone().with_value(
            names::CO_MIN_CLASS_HOURS,
            DatedValue {
                since: day("2023-01-01"),
                value: 130,
                reference: "test".into(),
            },
        );
        let before = p.at(names::CO_MIN_CLASS_HOURS, day("2022-12-31")).unwrap();
        let after = p.at(names::CO_MIN_CLASS_HOURS, day("2023-01-01")).unwrap();
        assert_eq!(
            (before.value, before.label()),
            (120, "co_min_class_hours@2022-04-22".to_string())
        );
        assert_eq!(
            (after.value, after.label()),
            (130, "co_min_class_hours@2023-01-01".to_string())
        );
    }

    #[test]
    fn a_file_missing_a_parameter_is_refused() {
        let text = SHIPPED.replace("[co_max_daily_hours]", "[co_max_daily_hours_typo]");
        assert_eq!(
            Parameters::from_toml(&text),
            Err(ParamError::Missing("co_max_daily_hours".into()))
        );
    }
}
