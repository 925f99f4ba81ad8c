//! Working days in China (CO-LEAD): Monday to Friday, less the days off, plus
//! the weekend days made working days (调休), per the State Council's yearly
//! notice, as dated data (`data/calendar.toml`, one entry per notice).
//!
//! A year without its notice is not loaded: [`Calendar::working_days_between`]
//! then counts Monday to Friday and names the years it could not read, so that
//! a decision says so (CO-CALENDAR) instead of counting silently.

use crate::data::FieldError;
use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why a calendar file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not TOML or JSON of the expected shape.
    #[error("calendar data is malformed: {0}")]
    Malformed(String),
    /// A day that is not `YYYY-MM-DD`, or a range that runs backwards.
    #[error("year {year}: {detail}")]
    Day {
        /// The year of the entry.
        year: i32,
        /// What is wrong.
        detail: String,
    },
    /// The same year twice.
    #[error("year {0} is listed twice")]
    Repeated(i32),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    year: Vec<CalendarYear>,
}

/// One year of the calendar as the State Council's notice gives it, in the
/// form people edit: days off as `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`
/// ranges, and the weekend days made working days (调休).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarYear {
    /// The year.
    pub year: i32,
    /// The notice it comes from (国办发明电〔…〕…号).
    pub notice: String,
    /// Days off: single days or `from..to` ranges, within the year.
    pub days_off: Vec<String>,
    /// Weekend days that are working days, within the year.
    pub working_weekends: Vec<String>,
}

/// First and last year a calendar may be loaded for.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

impl CalendarYear {
    /// Checks the entry: every day lies in the year, ranges run forwards,
    /// working weekend days are weekend days and not also days off. Each
    /// problem names its field (`days_off[2]`).
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        self.read().map(|_| ())
    }

    fn read(&self) -> Result<Year, Vec<FieldError>> {
        let y = self.year;
        let mut errs = Vec::new();
        if !YEARS.contains(&y) {
            errs.push(FieldError::new(
                "year",
                format!("must be {} to {}", YEARS.start(), YEARS.end()),
            ));
            return Err(errs);
        }
        if !crate::text::filled(&self.notice, 200) {
            errs.push(FieldError::new(
                "notice",
                "must be 1 to 200 characters, not all blank",
            ));
        }
        let day = |text: &str| -> Result<NaiveDate, String> {
            let d = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map_err(|_| "is not a date YYYY-MM-DD (or a range of two)".to_string())?;
            if d.year() != y {
                return Err(format!("a day that lies outside {y}"));
            }
            Ok(d)
        };
        let mut days_off = BTreeSet::new();
        for (i, item) in self.days_off.iter().enumerate() {
            let field = format!("days_off[{i}]");
            let range = match item.split_once("..") {
                Some((a, b)) => day(a).and_then(|a| day(b).map(|b| (a, b))),
                None => day(item).map(|d| (d, d)),
            };
            match range {
                Err(detail) => errs.push(FieldError::new(field, detail)),
                Ok((from, to)) if to < from => {
                    errs.push(FieldError::new(field, "the range runs backwards"))
                }
                Ok((from, to)) => days_off.extend(from.iter_days().take_while(|d| *d <= to)),
            }
        }
        let mut working_weekends = BTreeSet::new();
        for (i, item) in self.working_weekends.iter().enumerate() {
            let field = format!("working_weekends[{i}]");
            match day(item) {
                Err(detail) => errs.push(FieldError::new(field, detail)),
                Ok(d) if !is_weekend(d) => errs.push(FieldError::new(
                    field,
                    "a working weekend day that is not a Saturday or Sunday",
                )),
                Ok(d) if days_off.contains(&d) => errs.push(FieldError::new(
                    field,
                    "a day that is both a day off and a working day",
                )),
                Ok(d) => {
                    working_weekends.insert(d);
                }
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Year {
            days_off,
            working_weekends,
        })
    }

    /// Whether two entries give the same days (whatever their spelling).
    pub fn same_days(&self, other: &CalendarYear) -> bool {
        match (self.read(), other.read()) {
            (Ok(a), Ok(b)) => self.year == other.year && a == b,
            _ => false,
        }
    }
}

/// One loaded year.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Year {
    days_off: BTreeSet<NaiveDate>,
    working_weekends: BTreeSet<NaiveDate>,
}

/// The loaded years of the working-day calendar. In JSON: the list of its
/// [`CalendarYear`] entries, in year order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<CalendarYear>", into = "Vec<CalendarYear>")]
pub struct Calendar {
    entries: Vec<CalendarYear>,
    years: BTreeMap<i32, Year>,
}

/// A count of working days, and the years it had to count Monday to Friday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingDays {
    /// Working days counted.
    pub days: i64,
    /// Years of the counted period whose notice is not loaded (empty: every
    /// day was decided by a notice).
    pub unloaded: Vec<i32>,
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

impl TryFrom<Vec<CalendarYear>> for Calendar {
    type Error = CalendarError;
    fn try_from(entries: Vec<CalendarYear>) -> Result<Self, Self::Error> {
        Calendar::checked(entries)
    }
}

impl From<Calendar> for Vec<CalendarYear> {
    fn from(c: Calendar) -> Self {
        c.entries
    }
}

impl Calendar {
    /// The calendar shipped with this build (`data/calendar.toml`).
    pub fn shipped() -> &'static Calendar {
        &crate::data::PolicyData::shipped().calendar
    }

    /// Reads the shipped calendar anew, uncached.
    pub fn read_shipped() -> Calendar {
        crate::data::PolicyData::read_shipped().calendar
    }

    /// Reads a calendar in the TOML form of `data/calendar.toml`.
    pub fn from_toml(text: &str) -> Result<Calendar, CalendarError> {
        let file: File =
            toml::from_str(text).map_err(|e| CalendarError::Malformed(e.to_string()))?;
        Self::checked(file.year)
    }

    /// Every entry checked ([`CalendarYear::check`]), each year once.
    fn checked(mut entries: Vec<CalendarYear>) -> Result<Calendar, CalendarError> {
        let mut years = BTreeMap::new();
        for entry in &entries {
            let year = entry.read().map_err(|errs| CalendarError::Day {
                year: entry.year,
                detail: errs
                    .into_iter()
                    .map(|e| e.detail)
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
            if years.insert(entry.year, year).is_some() {
                return Err(CalendarError::Repeated(entry.year));
            }
        }
        entries.sort_by_key(|e| e.year);
        Ok(Calendar { entries, years })
    }

    /// The calendar with `entry` loaded for its year (replacing the year's
    /// entry if there was one).
    pub fn with_year(&self, entry: CalendarYear) -> Result<Calendar, Vec<FieldError>> {
        entry.check()?;
        let mut entries: Vec<CalendarYear> = self
            .entries
            .iter()
            .filter(|e| e.year != entry.year)
            .cloned()
            .collect();
        entries.push(entry);
        Calendar::checked(entries).map_err(|e| vec![FieldError::new("year", e.to_string())])
    }

    /// The entry of a loaded year.
    pub fn year(&self, year: i32) -> Option<&CalendarYear> {
        self.entries.iter().find(|e| e.year == year)
    }

    /// The years loaded, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// The notice a loaded year was read from.
    pub fn notice(&self, year: i32) -> Option<&str> {
        self.year(year).map(|y| y.notice.as_str())
    }

    /// Whether `day` is a working day: `None` when its year is not loaded.
    pub fn is_working_day(&self, day: NaiveDate) -> Option<bool> {
        let year = self.years.get(&day.year())?;
        Some(if year.working_weekends.contains(&day) {
            true
        } else {
            !year.days_off.contains(&day) && !is_weekend(day)
        })
    }

    /// Working days strictly after `from` and strictly before `to`: the full
    /// working days an office has between a filing and the first class day.
    /// Days of a year that is not loaded count Monday to Friday; the answer
    /// names those years.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> WorkingDays {
        let mut days = 0;
        let mut unloaded = BTreeSet::new();
        for day in from.iter_days().skip(1).take_while(|d| *d < to) {
            let working = self.is_working_day(day).unwrap_or_else(|| {
                unloaded.insert(day.year());
                !is_weekend(day)
            });
            if working {
                days += 1;
            }
        }
        WorkingDays {
            days,
            unloaded: unloaded.into_iter().collect(),
        }
    }
}

/// [`Calendar::working_days_between`] on the shipped calendar.
pub fn working_days_between(from: NaiveDate, to: NaiveDate) -> WorkingDays {
    Calendar::shipped().working_days_between(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn between(from: &str, to: &str) -> i64 {
        let w = working_days_between(day(from), day(to));
        assert!(w.unloaded.is_empty(), "{from}..{to}: {:?}", w.unloaded);
        w.days
    }

    #[test]
    fn co_lead_counts_full_working_days_between_filing_and_start() {
        let cases = [
            // Mon 2022-06-06 filed, start Mon 06-13: Tue..Fri = 4, start day excluded.
            ("2022-06-06", "2022-06-13", 4),
            ("2022-06-06", "2022-06-14", 5),
            // Dragon boat festival Fri 2022-06-03 is a holiday.
            ("2022-05-30", "2022-06-06", 3),
            // 调休: Sat 2022-04-24 was a working day.
            ("2022-04-22", "2022-04-26", 2),
            ("2022-06-06", "2022-06-06", 0),
            ("2022-06-08", "2022-06-06", 0),
        ];
        for (from, to, want) in cases {
            assert_eq!(between(from, to), want, "CO-LEAD {from}..{to}");
        }
    }

    #[test]
    fn co_lead_across_spring_festival_and_national_day_of_2024_and_2026() {
        // 2024 春节: 2-10..2-17 off, Sun 2-04 and Sun 2-18 working. Filed Thu
        // 2024-02-01, start Tue 2024-02-20: Fri 2, Sun 4, Mon 5..Fri 9 (5),
        // Sun 18, Mon 19 = 9 working days; Monday to Friday would say 12.
        assert_eq!(between("2024-02-01", "2024-02-20"), 9);
        // 2024 国庆: 10-01..10-07 off, Sun 9-29 and Sat 10-12 working. Filed
        // Fri 9-27, start Mon 10-14: Sun 9-29, Mon 9-30, Tue 10-08..Fri 10-11
        // (4), Sat 10-12 = 7; Monday to Friday would say 10.
        assert_eq!(between("2024-09-27", "2024-10-14"), 7);
        // 2026 春节: 2-15..2-23 off, Sat 2-14 and Sat 2-28 working. Filed Thu
        // 2026-02-12, start Mon 2026-03-02: Fri 13, Sat 14, Tue 24..Fri 27
        // (4), Sat 28 = 7; Monday to Friday would say 11.
        assert_eq!(between("2026-02-12", "2026-03-02"), 7);
        // 2026 中秋 and 国庆: 9-25..9-27 and 10-01..10-07 off, Sun 9-20 and
        // Sat 10-10 working. Filed Fri 9-18, start Mon 10-12: Sun 20, Mon
        // 21..Thu 24 (4), Mon 28..Wed 30 (3), Thu 10-08, Fri 10-09, Sat 10-10
        // = 11; Monday to Friday would say 15.
        assert_eq!(between("2026-09-18", "2026-10-12"), 11);
        // 2025 国庆 and 中秋 together: 10-01..10-08 off, Sat 10-11 working.
        assert_eq!(between("2025-09-30", "2025-10-13"), 3);
    }

    #[test]
    fn a_period_reaching_an_unloaded_year_counts_monday_to_friday_and_names_the_year() {
        // Filed Wed 2026-12-30, start Mon 2027-01-11: Thu 12-31 (2026, a
        // working day by its notice), then Fri 01-01 and Mon 01-04..Fri 01-08
        // counted Monday to Friday: 2027 has no notice loaded.
        let w = working_days_between(day("2026-12-30"), day("2027-01-11"));
        assert_eq!(w.days, 7);
        assert_eq!(w.unloaded, vec![2027]);
        // One day before the unloaded year: nothing unloaded.
        let w = working_days_between(day("2026-12-28"), day("2027-01-01"));
        assert_eq!((w.days, w.unloaded.is_empty()), (3, true));
        assert_eq!(Calendar::shipped().is_working_day(day("2027-01-04")), None);
        assert_eq!(Calendar::shipped().is_working_day(day("2021-12-31")), None);
    }

    #[test]
    fn the_shipped_calendar_loads_2022_to_2026_with_each_notice() {
        let c = Calendar::shipped();
        assert_eq!(
            c.years().collect::<Vec<_>>(),
            vec![2022, 2023, 2024, 2025, 2026]
        );
        assert!(c.notice(2025).unwrap().contains("国办发明电〔2024〕12号"));
        // Every weekday holiday of 2022-2023 that the calendar had as code is a day off.
        for d in ["2022-01-03", "2022-09-12", "2023-06-23", "2023-10-06"] {
            assert_eq!(c.is_working_day(day(d)), Some(false), "{d}");
        }
        for d in [
            "2022-04-24",
            "2023-10-08",
            "2024-02-18",
            "2025-01-26",
            "2026-02-28",
        ] {
            assert_eq!(c.is_working_day(day(d)), Some(true), "{d}");
        }
    }

    #[test]
    fn calendar_data_that_is_wrong_is_refused_with_its_year_and_reason() {
        let file = |off: &str, work: &str| {
            format!(
                "[[year]]\nyear = 2024\nnotice = \"n\"\ndays_off = [{off}]\nworking_weekends = [{work}]\n"
            )
        };
        let err = |off: &str, work: &str| Calendar::from_toml(&file(off, work)).unwrap_err();
        assert!(matches!(
            err("\"2025-01-01\"", ""),
            CalendarError::Day { year: 2024, .. }
        ));
        assert!(
            err("\"2024-02-17..2024-02-10\"", "")
                .to_string()
                .contains("backwards")
        );
        assert!(err("\"2024-02-30\"", "").to_string().contains("not a date"));
        assert!(
            err("", "\"2024-02-05\"")
                .to_string()
                .contains("not a Saturday or Sunday")
        );
        assert!(
            err("\"2024-02-04\"", "\"2024-02-04\"")
                .to_string()
                .contains("both")
        );
        let twice = format!("{}{}", file("", ""), file("", ""));
        assert_eq!(
            Calendar::from_toml(&twice).unwrap_err(),
            CalendarError::Repeated(2024)
        );
        assert!(Calendar::from_toml("[[year]]\nyear = 2024\n").is_err());
        assert!(Calendar::from_toml(include_str!("../data/calendar.toml")).is_ok());
    }
}
