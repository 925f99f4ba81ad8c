//! Working days in China (CO-LEAD): Monday to Friday, less public holidays,
//! plus the weekend days made working days (调休), per the State Council's
//! yearly notice. Years not listed fall back to Monday to Friday.

use chrono::{Datelike, NaiveDate, Weekday};

/// Public holidays on weekdays, 2022 and 2023 (国务院办公厅 notices).
const HOLIDAYS: &[&str] = &[
    "2022-01-03",
    "2022-01-31",
    "2022-02-01",
    "2022-02-02",
    "2022-02-03",
    "2022-02-04",
    "2022-04-04",
    "2022-04-05",
    "2022-05-02",
    "2022-05-03",
    "2022-05-04",
    "2022-06-03",
    "2022-09-12",
    "2022-10-03",
    "2022-10-04",
    "2022-10-05",
    "2022-10-06",
    "2022-10-07",
    "2023-01-02",
    "2023-01-23",
    "2023-01-24",
    "2023-01-25",
    "2023-01-26",
    "2023-01-27",
    "2023-04-05",
    "2023-05-01",
    "2023-05-02",
    "2023-05-03",
    "2023-06-22",
    "2023-06-23",
    "2023-09-29",
    "2023-10-02",
    "2023-10-03",
    "2023-10-04",
    "2023-10-05",
    "2023-10-06",
];

/// Weekend days that were working days (调休).
const MAKEUP_WORKDAYS: &[&str] = &[
    "2022-01-29",
    "2022-01-30",
    "2022-04-02",
    "2022-04-24",
    "2022-05-07",
    "2022-10-08",
    "2022-10-09",
    "2023-01-28",
    "2023-01-29",
    "2023-04-23",
    "2023-05-06",
    "2023-06-25",
    "2023-10-07",
    "2023-10-08",
];

/// Whether `day`, written `YYYY-MM-DD`, is in `list` (written in place:
/// this runs for every day of every session and filing period).
fn listed(list: &[&str], day: NaiveDate) -> bool {
    let Ok(year) = u32::try_from(day.year()) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    let mut text = *b"0000-00-00";
    for (at, value, digits) in [(0, year, 4), (5, day.month(), 2), (8, day.day(), 2)] {
        let mut v = value;
        for i in (at..at + digits).rev() {
            text[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    list.iter().any(|s| s.as_bytes() == text)
}

/// Whether `day` is a working day.
pub fn is_working_day(day: NaiveDate) -> bool {
    if listed(MAKEUP_WORKDAYS, day) {
        return true;
    }
    if listed(HOLIDAYS, day) {
        return false;
    }
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Working days strictly after `from` and strictly before `to`: the full
/// working days an office has between a filing and the first class day.
pub fn working_days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    let mut n = 0;
    let mut d = from.succ_opt();
    while let Some(day) = d {
        if day >= to {
            break;
        }
        if is_working_day(day) {
            n += 1;
        }
        d = day.succ_opt();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
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
            assert_eq!(
                working_days_between(day(from), day(to)),
                want,
                "CO-LEAD {from}..{to}"
            );
        }
    }

    #[test]
    fn every_listed_day_is_found_and_no_other_day_is() {
        for h in HOLIDAYS {
            assert!(!is_working_day(day(h)), "holiday {h}");
        }
        for m in MAKEUP_WORKDAYS {
            assert!(is_working_day(day(m)), "makeup working day {m}");
        }
        // Every day of the listed years: listed exactly when its text is.
        let mut d = day("2021-01-01");
        while d < day("2025-01-01") {
            let text = d.format("%Y-%m-%d").to_string();
            assert_eq!(
                listed(HOLIDAYS, d),
                HOLIDAYS.contains(&text.as_str()),
                "{text}"
            );
            d = d.succ_opt().unwrap();
        }
        for far in [NaiveDate::MIN, NaiveDate::MAX, day("0999-01-01")] {
            assert!(!listed(HOLIDAYS, far), "{far}");
        }
    }
}
