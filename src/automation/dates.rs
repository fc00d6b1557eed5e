//! Date arithmetic for scripts: today in the configured time zone, adding days and months,
//! days until a date, and the next anniversary of a date (birthdays; 29 February falls on
//! 28 February in other years).

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// A date from `2026-03-01` or a date-time (its date in `zone`).
pub fn parse(value: &str, zone: chrono_tz::Tz) -> Option<NaiveDate> {
    let value = value.trim();
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Some(d);
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&zone).date_naive())
}

pub fn today(now: DateTime<Utc>, zone: chrono_tz::Tz) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

pub fn add_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    date.checked_add_signed(chrono::Duration::try_days(days)?)
}

/// Adds calendar months; the 31st becomes the last day of a shorter month.
pub fn add_months(date: NaiveDate, months: i64) -> Option<NaiveDate> {
    let n = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 {
        date.checked_add_months(n)
    } else {
        date.checked_sub_months(n)
    }
}

pub fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

/// The date `month`/`day` falls on in `year`: 29 February becomes 28 February in a common year.
fn in_year(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day).or_else(|| {
        (month == 2 && day == 29)
            .then(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .flatten()
    })
}

/// The first anniversary of `date` on or after `today`.
pub fn next_anniversary(date: NaiveDate, today: NaiveDate) -> Option<NaiveDate> {
    let this_year = in_year(today.year(), date.month(), date.day())?;
    if this_year >= today {
        Some(this_year)
    } else {
        in_year(today.year() + 1, date.month(), date.day())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn anniversaries_across_the_year_end_and_leap_days() {
        assert_eq!(
            next_anniversary(d("1990-11-22"), d("2026-11-22")),
            Some(d("2026-11-22"))
        );
        assert_eq!(
            next_anniversary(d("1990-11-21"), d("2026-11-22")),
            Some(d("2027-11-21"))
        );
        assert_eq!(
            next_anniversary(d("1985-01-03"), d("2026-12-29")),
            Some(d("2027-01-03"))
        );
        assert_eq!(
            next_anniversary(d("2000-02-29"), d("2027-02-20")),
            Some(d("2027-02-28"))
        );
        assert_eq!(
            next_anniversary(d("2000-02-29"), d("2028-02-20")),
            Some(d("2028-02-29"))
        );
        assert_eq!(
            next_anniversary(d("2000-02-29"), d("2027-03-01")),
            Some(d("2028-02-29"))
        );
    }

    #[test]
    fn arithmetic_on_dates() {
        assert_eq!(add_days(d("2026-12-30"), 3), Some(d("2027-01-02")));
        assert_eq!(add_months(d("2026-01-31"), 1), Some(d("2026-02-28")));
        assert_eq!(add_months(d("2026-03-31"), -1), Some(d("2026-02-28")));
        assert_eq!(days_between(d("2026-12-30"), d("2027-01-02")), 3);
        let shanghai: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        // 20:00 UTC is already the next day in Shanghai.
        let now: DateTime<Utc> = "2026-11-22T20:00:00Z".parse().unwrap();
        assert_eq!(today(now, shanghai), d("2026-11-23"));
        assert_eq!(
            parse("2026-11-22T20:00:00Z", shanghai),
            Some(d("2026-11-23"))
        );
    }
}
