//! Calendar arithmetic of reports: date ranges (absolute and relative), buckets and their
//! names, the previous period, and a time zone's offset changes for the store.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::store::reports::{Bucket, Zone};

pub fn parse_bucket(name: &str) -> Option<Bucket> {
    Some(match name {
        "day" => Bucket::Day,
        "week" => Bucket::Week,
        "month" => Bucket::Month,
        "quarter" => Bucket::Quarter,
        "year" => Bucket::Year,
        _ => return None,
    })
}

/// The first day of the bucket holding `date`.
pub fn bucket_start(date: NaiveDate, bucket: Bucket) -> NaiveDate {
    let first_of = |month: u32| NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date);
    match bucket {
        Bucket::Day => date,
        Bucket::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        Bucket::Month => first_of(date.month()),
        Bucket::Quarter => first_of((date.month() - 1) / 3 * 3 + 1),
        Bucket::Year => first_of(1),
    }
}

/// The first day of the bucket after the one starting at `start`.
pub fn next_bucket(start: NaiveDate, bucket: Bucket) -> NaiveDate {
    match bucket {
        Bucket::Day => start + Duration::days(1),
        Bucket::Week => start + Duration::days(7),
        Bucket::Month => start + Months::new(1),
        Bucket::Quarter => start + Months::new(3),
        Bucket::Year => start + Months::new(12),
    }
}

/// A bucket's name: `2026-01-05`, `2026-W02` (ISO), `2026-01`, `2026-Q1`, `2026`.
pub fn bucket_key(start: NaiveDate, bucket: Bucket) -> String {
    match bucket {
        Bucket::Day => start.format("%Y-%m-%d").to_string(),
        Bucket::Week => {
            let week = start.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        }
        Bucket::Month => start.format("%Y-%m").to_string(),
        Bucket::Quarter => format!("{}-Q{}", start.year(), (start.month() - 1) / 3 + 1),
        Bucket::Year => start.year().to_string(),
    }
}

/// The first day of a bucket from its name (the inverse of [`bucket_key`]).
pub fn parse_bucket_key(key: &str, bucket: Bucket) -> Option<NaiveDate> {
    match bucket {
        Bucket::Day => NaiveDate::parse_from_str(key, "%Y-%m-%d").ok(),
        Bucket::Week => {
            let (year, week) = key.split_once("-W")?;
            NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, chrono::Weekday::Mon)
        }
        Bucket::Month => NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d").ok(),
        Bucket::Quarter => {
            let (year, q) = key.split_once("-Q")?;
            let q: u32 = q.parse().ok()?;
            NaiveDate::from_ymd_opt(year.parse().ok()?, (q.checked_sub(1)?) * 3 + 1, 1)
        }
        Bucket::Year => NaiveDate::from_ymd_opt(key.parse().ok()?, 1, 1),
    }
}

/// Every bucket from the one holding `from` to the one holding `to`, as first days.
pub fn buckets_between(from: NaiveDate, to: NaiveDate, bucket: Bucket) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut at = bucket_start(from, bucket);
    while at <= to && out.len() < 10_000 {
        out.push(at);
        at = next_bucket(at, bucket);
    }
    out
}

/// Days from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// How far back the previous period lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    Months(u32),
    Days(i64),
}

impl Shift {
    /// A date of the previous period moved into the current one.
    pub fn forward(self, date: NaiveDate) -> NaiveDate {
        match self {
            Shift::Months(n) => date + Months::new(n),
            Shift::Days(n) => date + Duration::days(n),
        }
    }
}

fn last_day_of_month(date: NaiveDate) -> NaiveDate {
    bucket_start(date, Bucket::Month) + Months::new(1) - Duration::days(1)
}

pub const RELATIVE: &[&str] = &[
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "last_7_days",
    "last_30_days",
    "last_90_days",
];

/// A relative range as of `today`.
pub fn relative(name: &str, today: NaiveDate) -> Option<DateRange> {
    let whole = |bucket: Bucket, back: u32| {
        let start = bucket_start(today, bucket);
        let months = match bucket {
            Bucket::Month => 1,
            Bucket::Quarter => 3,
            _ => 12,
        };
        let from = start - Months::new(months * back);
        DateRange {
            from,
            to: from + Months::new(months) - Duration::days(1),
        }
    };
    let days = |n: i64| DateRange {
        from: today - Duration::days(n - 1),
        to: today,
    };
    Some(match name {
        "this_month" => whole(Bucket::Month, 0),
        "last_month" => whole(Bucket::Month, 1),
        "this_quarter" => whole(Bucket::Quarter, 0),
        "last_quarter" => whole(Bucket::Quarter, 1),
        "this_year" => whole(Bucket::Year, 0),
        "last_year" => whole(Bucket::Year, 1),
        "last_7_days" => days(7),
        "last_30_days" => days(30),
        "last_90_days" => days(90),
        _ => return None,
    })
}

impl DateRange {
    /// The period of the same length just before: whole months stay whole months (the
    /// previous of a quarter is the quarter before, of a year the year before).
    pub fn previous(self) -> (DateRange, Shift) {
        if self.from.day() == 1 && self.to == last_day_of_month(self.to) {
            let months = (self.to.year() - self.from.year()) * 12 + self.to.month() as i32
                - self.from.month() as i32
                + 1;
            let months = months.max(1) as u32;
            let from = self.from - Months::new(months);
            let to = self.from - Duration::days(1);
            return (DateRange { from, to }, Shift::Months(months));
        }
        let days = (self.to - self.from).num_days() + 1;
        let from = self.from - Duration::days(days);
        let to = self.from - Duration::days(1);
        (DateRange { from, to }, Shift::Days(days))
    }
}

/// The instant a local day starts in a zone (the first moment that exists, if midnight falls
/// in a gap).
pub fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut at = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&at).earliest() {
            return t.with_timezone(&Utc);
        }
        at += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&at)
}

fn offset_at(tz: Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The zone's offset and its changes between two instants (found day by day, then to the
/// second by bisection).
pub fn zone(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Zone {
    let initial = offset_at(tz, from);
    let mut offsets = Vec::new();
    let mut current = initial;
    let mut day = from;
    while day < to {
        let next = (day + Duration::days(1)).min(to);
        let offset = offset_at(tz, next);
        if offset != current {
            // The first whole second at the new offset (changes fall on whole seconds).
            let (mut lo, mut hi) = (day.timestamp(), next.timestamp() + 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let at = DateTime::from_timestamp(mid, 0).unwrap_or(next);
                if offset_at(tz, at) == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let hi = DateTime::from_timestamp(hi, 0).unwrap_or(next);
            offsets.push((hi, offset));
            current = offset;
        }
        day = next;
    }
    Zone {
        name: tz.name().to_owned(),
        offsets,
        initial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn buckets_are_named_and_read_back() {
        let cases = [
            ("2026-01-01", Bucket::Week, "2026-W01", "2025-12-29"),
            ("2027-01-01", Bucket::Week, "2026-W53", "2026-12-28"),
            ("2026-08-15", Bucket::Quarter, "2026-Q3", "2026-07-01"),
            ("2026-02-28", Bucket::Month, "2026-02", "2026-02-01"),
            ("2026-02-28", Bucket::Year, "2026", "2026-01-01"),
        ];
        for (date, bucket, key, start) in cases {
            let s = bucket_start(d(date), bucket);
            assert_eq!(s, d(start), "{date}");
            assert_eq!(bucket_key(s, bucket), key);
            assert_eq!(parse_bucket_key(key, bucket), Some(s));
        }
    }

    #[test]
    fn previous_periods_keep_whole_months() {
        let q = DateRange {
            from: d("2026-04-01"),
            to: d("2026-06-30"),
        };
        assert_eq!(
            q.previous(),
            (
                DateRange {
                    from: d("2026-01-01"),
                    to: d("2026-03-31")
                },
                Shift::Months(3)
            )
        );
        let week = DateRange {
            from: d("2026-03-10"),
            to: d("2026-03-16"),
        };
        assert_eq!(week.previous().0.from, d("2026-03-03"));
    }

    #[test]
    fn zone_changes_are_found_to_the_second() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let z = zone(
            tz,
            day_start(tz, d("2026-01-01")),
            day_start(tz, d("2027-01-01")),
        );
        assert_eq!(z.initial, 3600);
        assert_eq!(z.offsets.len(), 2);
        assert_eq!(
            z.offsets[0].0.to_rfc3339(),
            "2026-03-29T01:00:00+00:00",
            "{z:?}"
        );
        assert_eq!(z.offsets[0].1, 7200);
    }
}
