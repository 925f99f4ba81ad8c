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

fn listed(list: &[&str], day: NaiveDate) -> bool {
    let s = day.format("%Y-%m-%d").to_string();
    list.contains(&s.as_str())
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
}
