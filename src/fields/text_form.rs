//! Values as people type them into spreadsheets, and back.
//!
//! An import reads cells that a person typed, or that Excel or WPS formatted for display:
//! thousands separators, full-width digits from a Chinese input method, currency signs,
//! `2026/1/5`, `2026年1月5日`, Excel date serial numbers, 是/否. Each parser here turns one such
//! cell into the exact value a field kind stores (decimals never pass through `f64`), or says
//! in plain English what is wrong and how to write it, because the message ends up in the
//! import report next to the row and column.
//!
//! Each refusal is a [`CellProblem`]: the English message, plus a stable code and the parameters
//! of the message, so a page can say the same in the reader's language.
//!
//! Callers decide what a blank cell means (normally "no value") before calling a parser; the
//! parsers refuse blank text. The `format_*` functions go the other way, for export and display,
//! and always produce text the parsers read back.

use std::borrow::Cow;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Utc,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

/// Why a cell was refused: a stable `code` (`not_date`, `not_option` …) with the `params` its
/// message is made of, for clients that show it in another language, and the English `message`
/// for everyone else. The codes are listed in `docs/import-export.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellProblem {
    pub code: &'static str,
    pub params: Map<String, Value>,
    pub message: String,
}

impl CellProblem {
    pub fn new(code: &'static str, message: impl Into<String>) -> CellProblem {
        CellProblem {
            code,
            params: Map::new(),
            message: message.into(),
        }
    }

    /// Adds a parameter of the message.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> CellProblem {
        self.params.insert(name.to_owned(), value.into());
        self
    }

    /// A refusal with the cell's text (cut short) as the `value` parameter.
    fn of_cell(code: &'static str, text: &str, message: impl Into<String>) -> CellProblem {
        CellProblem::new(code, message).with("value", shown(text))
    }
}

impl std::fmt::Display for CellProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The languages labels and yes/no words come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    ZhCn,
}

impl Lang {
    /// `zh`, `zh-CN`, `zh_Hans` … are Chinese; anything else is English, the fallback language
    /// of every label.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.trim().to_ascii_lowercase().starts_with("zh") {
            Lang::ZhCn
        } else {
            Lang::En
        }
    }
}

/// Folds full-width forms (U+FF01–U+FF5E, typed by Chinese input methods: `１２３４．５`, `，`,
/// `（必填）`) to ASCII, turns the ideographic and no-break spaces into plain spaces, and the
/// Unicode minus sign and full-width yen sign into `-` and `¥`, so every parser and the header
/// matcher see one spelling. Borrows when there is nothing to fold (the common case).
pub fn fold_width(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || !s.chars().any(|c| fold_char(c) != c) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(fold_char).collect())
}

fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' | '\u{00A0}' | '\u{2007}' | '\u{2009}' | '\u{202F}' => ' ',
        '\u{2212}' => '-',
        '\u{FFE5}' => '¥',
        _ => c,
    }
}

/// The cell's text for a message: trimmed, and cut short so a 10,000-character cell does not
/// flood the report.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    let t = text.trim();
    if t.chars().count() <= MAX {
        t.to_owned()
    } else {
        let cut: String = t.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// [`shown`] in quotes, as the English messages put it.
fn quote(text: &str) -> String {
    format!("'{}'", shown(text))
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// A number as written in a cell: the value without its `%` sign, whether it had one, and the
/// currency it was marked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberText {
    /// The number as written: `12.5%` gives 12.5.
    pub value: Decimal,
    pub percent: bool,
    /// An ISO code where the mark says which currency (`US$`, `RMB`, `元`, `€`), else the sign
    /// itself (`¥` is yuan or yen, `$` one of many dollars). Lets an importer refuse dollars
    /// going into a yuan field instead of silently storing them.
    pub currency: Option<&'static str>,
}

/// Marks accepted before a number, longest first so `US$` wins over `$`. ASCII letters match
/// case-insensitively.
const CURRENCY_PREFIXES: &[(&str, &str)] = &[
    ("US$", "USD"),
    ("HK$", "HKD"),
    ("RMB", "CNY"),
    ("CNY", "CNY"),
    ("USD", "USD"),
    ("EUR", "EUR"),
    ("GBP", "GBP"),
    ("HKD", "HKD"),
    ("JPY", "JPY"),
    ("¥", "¥"),
    ("$", "$"),
    ("€", "EUR"),
    ("£", "GBP"),
];

/// Marks accepted after a number.
const CURRENCY_SUFFIXES: &[(&str, &str)] = &[
    ("元", "CNY"),
    ("RMB", "CNY"),
    ("CNY", "CNY"),
    ("USD", "USD"),
    ("EUR", "EUR"),
    ("GBP", "GBP"),
    ("HKD", "HKD"),
    ("JPY", "JPY"),
    ("¥", "¥"),
    ("$", "$"),
    ("€", "EUR"),
];

fn strip_currency_prefix(s: &str) -> Option<(&str, &'static str)> {
    CURRENCY_PREFIXES.iter().find_map(|(mark, code)| {
        let head = s.get(..mark.len())?;
        head.eq_ignore_ascii_case(mark)
            .then(|| (&s[mark.len()..], *code))
    })
}

fn strip_currency_suffix(s: &str) -> Option<(&str, &'static str)> {
    CURRENCY_SUFFIXES.iter().find_map(|(mark, code)| {
        let start = s.len().checked_sub(mark.len())?;
        let tail = s.get(start..)?;
        tail.eq_ignore_ascii_case(mark)
            .then(|| (&s[..start], *code))
    })
}

enum DigitsError {
    Malformed,
    DecimalComma,
    Exponent,
}

/// The digits of an unsigned number with optional thousands separators (`,` or spaces, in
/// groups of three) and an optional decimal point, as plain `1234.5`.
///
/// Grouping is checked rather than separators simply dropped: `1,5` written by someone used to a
/// decimal comma must not become fifteen.
fn plain_digits(core: &str) -> Result<String, DigitsError> {
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if core.contains(['e', 'E']) {
        let compact: String = core.chars().filter(|c| !matches!(c, ',' | ' ')).collect();
        return Err(if Decimal::from_scientific(&compact).is_ok() {
            DigitsError::Exponent
        } else {
            DigitsError::Malformed
        });
    }
    let (int_part, frac_part) = match core.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (core, None),
    };
    if let Some(f) = frac_part {
        if f.contains(',') {
            return Err(DigitsError::DecimalComma);
        }
        if !all_digits(f) {
            return Err(DigitsError::Malformed);
        }
    }
    let separator = int_part.chars().find(|c| !c.is_ascii_digit());
    let int_digits = match separator {
        None => int_part.to_owned(),
        Some(sep @ (',' | ' ')) => {
            let groups: Vec<&str> = int_part.split(sep).collect();
            let first_ok = groups
                .first()
                .is_some_and(|g| (1..=3).contains(&g.len()) && all_digits(g));
            let rest_ok = groups[1..].iter().all(|g| g.len() == 3 && all_digits(g));
            if !(first_ok && rest_ok) {
                let looks_like_decimal_comma = sep == ','
                    && frac_part.is_none()
                    && groups.len() == 2
                    && groups.iter().all(|g| !g.is_empty() && all_digits(g));
                return Err(if looks_like_decimal_comma {
                    DigitsError::DecimalComma
                } else {
                    DigitsError::Malformed
                });
            }
            groups.concat()
        }
        Some(_) => return Err(DigitsError::Malformed),
    };
    let frac = frac_part.unwrap_or("");
    if int_digits.is_empty() && frac.is_empty() {
        return Err(DigitsError::Malformed);
    }
    let int_digits = if int_digits.is_empty() {
        "0".to_owned()
    } else {
        int_digits
    };
    Ok(if frac.is_empty() {
        int_digits
    } else {
        format!("{int_digits}.{frac}")
    })
}

/// A number written as plain ASCII digits with an optional minus sign and decimal point,
/// read without the steps for separators, signs, currencies and percent.
fn plain_number(text: &str) -> Option<NumberText> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((int_part, frac_part)) => (int_part, Some(frac_part)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || !frac_part.is_none_or(digits) {
        return None;
    }
    let mut value = Decimal::from_str(unsigned).ok()?;
    value.set_sign_negative(negative && !value.is_zero());
    Some(NumberText {
        value,
        percent: false,
        currency: None,
    })
}

/// Reads a number the way people write it in spreadsheets: `1,234,567.89`, `1 234`,
/// `１２３４．５`, `¥1,200.00`, `$1,200`, `1,200元`, `12.5%`, `-1200`, `(1,200.00)` (accounting
/// negative), with `，` as a thousands separator too.
///
/// Scientific notation (`1.2E+3`) is refused on purpose: in a spreadsheet it almost always
/// means Excel displayed a long number rounded to six digits and saved the rounded text, and a
/// CRM must not import a rounded amount without anyone noticing.
pub fn parse_number(text: &str) -> Result<NumberText, CellProblem> {
    // Plain digits (`-1234.56`), the form most files hold, read straight away (the steps below
    // give them the same value).
    if let Some(number) = plain_number(text) {
        return Ok(number);
    }
    let folded = fold_width(text);
    let s = folded.trim();
    if s.is_empty() {
        return Err(CellProblem::new(
            "empty",
            "a number is expected, but the cell is empty",
        ));
    }
    let malformed = || {
        CellProblem::of_cell(
            "not_number",
            text,
            format!(
                "{} is not a number; write it like 1234.56 or 1,234.56",
                quote(text)
            ),
        )
    };

    let mut rest = s;
    let mut negative = false;
    let mut sign_seen = false;
    if let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        negative = true;
        sign_seen = true;
        rest = inner.trim();
    }
    let mut currency = None;
    loop {
        if !sign_seen && let Some(r) = rest.strip_prefix(['-', '+']) {
            negative = rest.starts_with('-');
            sign_seen = true;
            rest = r.trim_start();
        } else if currency.is_none()
            && let Some((r, code)) = strip_currency_prefix(rest)
        {
            currency = Some(code);
            rest = r.trim_start();
        } else {
            break;
        }
    }
    let mut percent = false;
    loop {
        if !percent && let Some(r) = rest.strip_suffix('%') {
            percent = true;
            rest = r.trim_end();
        } else if currency.is_none()
            && let Some((r, code)) = strip_currency_suffix(rest)
        {
            currency = Some(code);
            rest = r.trim_end();
        } else {
            break;
        }
    }
    if percent && currency.is_some() {
        return Err(malformed());
    }

    let digits = plain_digits(rest).map_err(|e| match e {
        DigitsError::Malformed => malformed(),
        DigitsError::DecimalComma => CellProblem::of_cell(
            "decimal_comma",
            text,
            format!(
                "{} is not a number: use a point for decimals (1234.56) and commas only between \
                 thousands (1,234.56)",
                quote(text)
            ),
        ),
        DigitsError::Exponent => CellProblem::of_cell(
            "scientific",
            text,
            format!(
                "{} is in scientific notation, which Excel shows when it has rounded a long \
                 number; format the column as Number (or Text) in Excel and save the file again",
                quote(text)
            ),
        ),
    })?;
    let mut value = Decimal::from_str(&digits).map_err(|_| {
        CellProblem::of_cell(
            "too_large",
            text,
            format!("{} is too large a number", quote(text)),
        )
    })?;
    if negative {
        value.set_sign_negative(true);
    }
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    Ok(NumberText {
        value,
        percent,
        currency,
    })
}

/// A decimal or money value. A `%` sign divides by a hundred (`12.5%` is 0.125), which is what
/// the cell means; currency marks are accepted and dropped. Exact: no binary float involved.
pub fn parse_decimal(text: &str) -> Result<Decimal, CellProblem> {
    let n = parse_number(text)?;
    Ok(if n.percent {
        n.value / Decimal::ONE_HUNDRED
    } else {
        n.value
    })
}

/// A `percent` field's value, which holds the number of percent: `12.5%` and `12.5` both give
/// 12.5.
///
/// A cell that Excel shows as `12.5%` holds 0.125, and the XLSX reader cannot see the cell's
/// number format (calamine does not expose it), so such a cell arrives as 0.125; the export
/// writes percent fields as 12.5 with a `0.00"%"` format so its own files round-trip.
pub fn parse_percent(text: &str) -> Result<Decimal, CellProblem> {
    let n = parse_number(text)?;
    if n.currency.is_some() {
        return Err(CellProblem::of_cell(
            "money_not_percent",
            text,
            format!("{} is an amount of money, not a percentage", quote(text)),
        ));
    }
    Ok(n.value)
}

/// A whole number. Fractions are refused rather than rounded (`12.00` is fine, `12.5` is not),
/// because silently dropping a part the user typed is worse than asking.
pub fn parse_integer(text: &str) -> Result<i64, CellProblem> {
    let n = parse_number(text)?;
    if n.percent {
        return Err(CellProblem::of_cell(
            "percent_not_whole",
            text,
            format!(
                "{} is a percentage; this field takes whole numbers like 1200",
                quote(text)
            ),
        ));
    }
    if !n.value.fract().is_zero() {
        return Err(CellProblem::of_cell(
            "not_whole",
            text,
            format!(
                "{} is not a whole number; this field takes whole numbers like 1200",
                quote(text)
            ),
        ));
    }
    n.value.trunc().to_i64().ok_or_else(|| {
        CellProblem::of_cell(
            "too_large",
            text,
            format!(
                "{} is too large; whole numbers go up to 9,223,372,036,854,775,807",
                quote(text)
            ),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Dates and times

const DATE_HINT: &str = "use 2026-01-05, 2026/1/5 or 2026年1月5日";
const DATETIME_HINT: &str = "use 2026-01-05 14:30, 2026/1/5 14:30:00 or 2026-01-05T14:30:00+08:00";

/// Excel's largest serial: 9999-12-31.
const EXCEL_MAX_SERIAL: f64 = 2_958_466.0;

/// Bare numbers below this are not read as Excel serials from text: `2026` or `12` in a date
/// column is a year or a typo, not a day in 1905 or 1900. 10000 is 1927-05-18.
const TEXT_SERIAL_MIN: f64 = 10_000.0;

/// The date and time an Excel serial number stands for (days since the epoch, the fraction
/// being the time of day, rounded to the millisecond as Excel keeps it).
///
/// In the default 1900 system Excel counts 1900-02-29, a day that never existed (a bug kept
/// for Lotus 1-2-3 compatibility): serial 60 is that fake day and gives `None`, serials 1–59
/// count from 1899-12-31 and serials above 60 from 1899-12-30. Serial 0 ("1900-01-00") is no
/// date either. In the 1904 system (old Mac workbooks) serial 0 is 1904-01-01.
pub fn excel_serial_to_datetime(serial: f64, is_1904: bool) -> Option<NaiveDateTime> {
    if !serial.is_finite() || !(0.0..EXCEL_MAX_SERIAL).contains(&serial) {
        return None;
    }
    let whole = serial.floor();
    let mut days = whole as i64;
    let mut millis = ((serial - whole) * 86_400_000.0).round() as i64;
    if millis >= 86_400_000 {
        days += 1;
        millis -= 86_400_000;
    }
    let epoch = if is_1904 {
        NaiveDate::from_ymd_opt(1904, 1, 1)
    } else if days > 60 {
        NaiveDate::from_ymd_opt(1899, 12, 30)
    } else if days == 60 || days == 0 {
        return None;
    } else {
        NaiveDate::from_ymd_opt(1899, 12, 31)
    }?;
    let date = epoch.checked_add_signed(TimeDelta::try_days(days)?)?;
    if date.year() > 9999 {
        return None;
    }
    let time = NaiveTime::MIN
        .overflowing_add_signed(TimeDelta::try_milliseconds(millis)?)
        .0;
    Some(date.and_time(time))
}

/// A bare number in an Excel serial's plausible range, as text: `46027` or `46027.604166667`.
fn text_serial(s: &str) -> Option<f64> {
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !(1..=7).contains(&int_part.len()) || !digits(int_part) || !digits(frac) {
        return None;
    }
    let v = f64::from_str(s).ok()?;
    (TEXT_SERIAL_MIN..EXCEL_MAX_SERIAL)
        .contains(&v)
        .then_some(v)
}

/// Splits `2026-01-05 14:30`, `2026-01-05T14:30:00Z` or `2026年1月5日14:30` into its date and
/// time parts.
fn split_date_time(s: &str) -> (&str, Option<&str>) {
    let split_at = s
        .char_indices()
        .find(|(_, c)| matches!(c, '日' | '号'))
        .map(|(i, c)| (i + c.len_utf8(), i + c.len_utf8()))
        .or_else(|| s.find(['T', 't', ' ']).map(|i| (i, i + 1)));
    match split_at {
        Some((end, start)) => {
            let time = s[start..].trim();
            (&s[..end], (!time.is_empty()).then_some(time))
        }
        None => (s, None),
    }
}

/// Why a date part was refused.
enum DateError {
    Malformed,
    YearLast,
    NoSuchMonth(u32),
    NoSuchDay(u32),
}

fn number_of(p: &str, len: std::ops::RangeInclusive<usize>) -> Option<u32> {
    (len.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        .then(|| p.parse().ok())
        .flatten()
}

/// `2026-01-05`, `2026/1/5`, `2026.1.5`, `2026年1月5日` and `20260105`.
fn parse_date_part(d: &str) -> Result<NaiveDate, DateError> {
    let parts: Vec<&str> = if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        vec![&d[..4], &d[4..6], &d[6..]]
    } else if let Some((y, rest)) = d.split_once('年') {
        let rest = rest
            .strip_suffix('日')
            .or_else(|| rest.strip_suffix('号'))
            .unwrap_or(rest);
        match rest.split_once('月') {
            Some((m, day)) => vec![y.trim(), m.trim(), day.trim()],
            None => return Err(DateError::Malformed),
        }
    } else {
        let sep = d
            .chars()
            .find(|c| matches!(c, '-' | '/' | '.'))
            .ok_or(DateError::Malformed)?;
        d.split(sep).collect()
    };
    let [y, m, day] = parts[..] else {
        return Err(DateError::Malformed);
    };
    if number_of(day, 4..=4).is_some() && number_of(y, 1..=2).is_some() {
        return Err(DateError::YearLast);
    }
    let (Some(y), Some(m), Some(day)) = (
        number_of(y, 4..=4),
        number_of(m, 1..=2),
        number_of(day, 1..=2),
    ) else {
        return Err(DateError::Malformed);
    };
    if !(1..=12).contains(&m) {
        return Err(DateError::NoSuchMonth(m));
    }
    NaiveDate::from_ymd_opt(y as i32, m, day).ok_or(DateError::NoSuchDay(day))
}

/// The refusal of a date part; `malformed` is the code of text that is no date at all
/// (`not_date`, or `not_datetime` with its own hint).
fn date_message(text: &str, e: DateError, malformed: &'static str, hint: &str) -> CellProblem {
    let q = quote(text);
    match e {
        DateError::Malformed => {
            CellProblem::of_cell(malformed, text, format!("{q} is not a date; {hint}"))
        }
        DateError::YearLast => CellProblem::of_cell(
            "year_last",
            text,
            format!(
                "{q} puts the year last, which countries read differently (5 January or May \
                 1?); write the year first: 2026-01-05"
            ),
        ),
        DateError::NoSuchMonth(m) => CellProblem::of_cell(
            "no_such_month",
            text,
            format!("{q} is not a date: there is no month {m}"),
        )
        .with("month", m),
        DateError::NoSuchDay(d) => CellProblem::of_cell(
            "no_such_day",
            text,
            format!("{q} is not a date: that month has no day {d}"),
        )
        .with("day", d),
    }
}

/// A time of day `14:30`, `14:30:00` or `14:30:00.250`, optionally followed by a zone `Z`,
/// `+08:00`, `+0800` or `+08`.
fn parse_time_part(t: &str) -> Option<(NaiveTime, Option<FixedOffset>)> {
    let (clock, zone) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
        (c, FixedOffset::east_opt(0))
    } else if let Some(i) = t.rfind(['+', '-']) {
        (&t[..i], Some(parse_zone(&t[i..])?))
    } else {
        (t, None)
    };
    let parts: Vec<&str> = clock.trim().split(':').collect();
    let (h, m, s) = match parts[..] {
        [h, m] => (h, m, "0"),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    let (sec, nanos) = match s.split_once('.') {
        Some((sec, frac)) if (1..=9).contains(&frac.len()) => {
            let n: u32 = frac.parse().ok()?;
            (sec, n * 10u32.pow(9 - frac.len() as u32))
        }
        Some(_) => return None,
        None => (s, 0),
    };
    let time = NaiveTime::from_hms_nano_opt(
        number_of(h, 1..=2)?,
        number_of(m, 2..=2)?,
        number_of(sec, 1..=2)?,
        nanos,
    )?;
    Some((time, zone))
}

fn parse_zone(z: &str) -> Option<FixedOffset> {
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let body = z.get(1..)?.replace(':', "");
    if !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match body.len() {
        2 => (number_of(&body, 2..=2)?, 0),
        4 => (number_of(&body[..2], 2..=2)?, number_of(&body[2..], 2..=2)?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h as i32 * 3600 + m as i32 * 60))
}

/// The fixed offset datetimes without a zone are read in, and displayed in.
fn fixed_offset(offset_minutes: i32) -> Option<FixedOffset> {
    offset_minutes
        .checked_mul(60)
        .and_then(FixedOffset::east_opt)
}

/// A calendar day: `2026-01-05`, `2026/1/5`, `2026.1.5`, `2026年1月5日`, `20260105`, or an
/// Excel serial number such as `46027` (from a date column that lost its date format).
///
/// A time of exactly midnight is accepted (`2026/1/5 0:00`, as Excel writes date columns to
/// CSV); any other time is refused, since dropping it would change what the user wrote. Day and
/// month first forms (`5/1/2026`) are refused as ambiguous. Serial numbers are read in Excel's
/// 1900 system and only from 10000 (1927-05-18) up, so a stray `2026` is not taken for a day
/// in 1905.
pub fn parse_date(text: &str) -> Result<NaiveDate, CellProblem> {
    // The form most files hold, read straight away (the steps below give it the same date).
    if let Some(date) = iso_date(text) {
        return Ok(date);
    }
    let folded = fold_width(text);
    let s = folded.trim();
    if s.is_empty() {
        return Err(CellProblem::new(
            "empty",
            "a date is expected, but the cell is empty",
        ));
    }
    let time_of_day = || {
        CellProblem::of_cell(
            "time_of_day",
            text,
            format!(
                "{} has a time of day; this field takes a date only, like 2026-01-05",
                quote(text)
            ),
        )
    };
    if let Some(serial) = text_serial(s) {
        let dt = excel_serial_to_datetime(serial, false)
            .ok_or_else(|| date_message(text, DateError::Malformed, "not_date", DATE_HINT))?;
        return if dt.time() == NaiveTime::MIN {
            Ok(dt.date())
        } else {
            Err(time_of_day())
        };
    }
    let (date_part, time_part) = split_date_time(s);
    let date =
        parse_date_part(date_part).map_err(|e| date_message(text, e, "not_date", DATE_HINT))?;
    if let Some(t) = time_part {
        match parse_time_part(t) {
            Some((time, _)) if time == NaiveTime::MIN => {}
            Some(_) => return Err(time_of_day()),
            None => {
                return Err(date_message(
                    text,
                    DateError::Malformed,
                    "not_date",
                    DATE_HINT,
                ));
            }
        }
    }
    Ok(date)
}

/// A date written exactly `YYYY-MM-DD`, read digit by digit: an import reads each date twice
/// (its cell, then its value), and chrono's parser reads its format string each time.
pub fn iso_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(&bytes[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&bytes[5..7])?, number(&bytes[8..])?)
}

/// An instant: `2026-01-05 14:30`, `2026/1/5 14:30:00`, `2026年1月5日 14:30`, RFC 3339
/// (`2026-01-05T14:30:00+08:00`), an Excel serial with a fraction (`46027.604166667`), or a
/// date alone (midnight).
///
/// Text without a zone means wall-clock time where the user is: it is read in the fixed offset
/// `offset_minutes` east of UTC (480 for China), which the caller takes from the user's or the
/// organisation's setting. A zone written in the text wins.
pub fn parse_datetime(text: &str, offset_minutes: i32) -> Result<DateTime<Utc>, CellProblem> {
    let local = fixed_offset(offset_minutes).ok_or_else(|| {
        CellProblem::new(
            "bad_offset",
            format!("{offset_minutes} minutes is not a valid UTC offset"),
        )
    })?;
    let folded = fold_width(text);
    let s = folded.trim();
    if s.is_empty() {
        return Err(CellProblem::new(
            "empty",
            "a date and time is expected, but the cell is empty",
        ));
    }
    let bad = || {
        CellProblem::of_cell(
            "not_datetime",
            text,
            format!("{} is not a date and time; {DATETIME_HINT}", quote(text)),
        )
    };
    let (naive, zone) = if let Some(serial) = text_serial(s) {
        (
            excel_serial_to_datetime(serial, false).ok_or_else(bad)?,
            None,
        )
    } else {
        let (date_part, time_part) = split_date_time(s);
        let date = parse_date_part(date_part)
            .map_err(|e| date_message(text, e, "not_datetime", DATETIME_HINT))?;
        match time_part {
            None => (date.and_time(NaiveTime::MIN), None),
            Some(t) => {
                let (time, zone) = parse_time_part(t).ok_or_else(bad)?;
                (date.and_time(time), zone)
            }
        }
    };
    let offset = zone.unwrap_or(local);
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(bad)
}

// ---------------------------------------------------------------------------------------------
// Booleans and options

/// Yes or no: 是/否, 对/错, 真/假, √/×, ✓/✗, true/false, yes/no, y/n, t/f, 1/0 — trimmed,
/// any case, full-width or not.
pub fn parse_bool(text: &str) -> Result<bool, CellProblem> {
    let key = fold_width(text).trim().to_lowercase();
    match key.as_str() {
        "是" | "对" | "真" | "√" | "✓" | "✔" | "true" | "t" | "yes" | "y" | "1" => {
            Ok(true)
        }
        "否" | "错" | "假" | "×" | "✗" | "✘" | "false" | "f" | "no" | "n" | "0" => {
            Ok(false)
        }
        "" => Err(CellProblem::new(
            "empty",
            "yes or no is expected, but the cell is empty",
        )),
        _ => Err(CellProblem::of_cell(
            "not_yes_no",
            text,
            format!(
                "{} is not yes or no; use 是/否, yes/no, true/false or 1/0",
                quote(text)
            ),
        )),
    }
}

/// How option values and labels are compared: width-folded, trimmed, lowercase.
fn option_key(s: &str) -> String {
    // Character by character, as `is_option_key` compares (`str::to_lowercase` would lower a
    // final sigma by its context).
    fold_width(s)
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `option_key(option) == key`, without making the option's key: every cell of a
/// select column is held against every option's value and labels.
fn is_option_key(option: &str, key: &str) -> bool {
    let folded = fold_width(option);
    folded
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .eq(key.chars())
}

/// The option value a cell names, if it names one by value: the quick way, before
/// [`parse_select`] (which needs the labels, each looked up by language) is asked.
pub fn option_by_value<'o>(
    text: &str,
    mut values: impl Iterator<Item = &'o str>,
) -> Option<&'o str> {
    let key = option_key(text);
    values.find(|v| !key.is_empty() && is_option_key(v, &key))
}

/// The option a cell names, by value first and then by either label. `Err` when the text is
/// only a label shared by several options (a definition mistake the user cannot resolve).
fn find_option<'o, S: AsRef<str>>(
    key: &str,
    options: &'o [(S, S, S)],
) -> Result<Option<&'o str>, CellProblem> {
    if let Some((v, _, _)) = options
        .iter()
        .find(|(v, _, _)| is_option_key(v.as_ref(), key))
    {
        return Ok(Some(v.as_ref()));
    }
    let mut by_label = options.iter().filter(|(_, en, zh)| {
        let matches = |l: &S| !l.as_ref().trim().is_empty() && is_option_key(l.as_ref(), key);
        matches(en) || matches(zh)
    });
    match (by_label.next(), by_label.next()) {
        (Some((v, _, _)), None) => Ok(Some(v.as_ref())),
        (Some(_), Some(_)) => Err(CellProblem::of_cell(
            "ambiguous_option",
            key,
            format!("'{key}' is the label of several options; use the option's value instead"),
        )),
        (None, _) => Ok(None),
    }
}

/// Options named in an error message: at most ten.
const OPTIONS_SHOWN: usize = 10;

/// The options for an English error message: English labels (or values), at most ten.
fn option_list<S: AsRef<str>>(options: &[(S, S, S)]) -> String {
    let mut names: Vec<&str> = options
        .iter()
        .take(OPTIONS_SHOWN)
        .map(|(v, en, _)| {
            if en.as_ref().trim().is_empty() {
                v.as_ref()
            } else {
                en.as_ref()
            }
        })
        .collect();
    if options.len() > OPTIONS_SHOWN {
        names.push("…");
    }
    names.join(", ")
}

/// A refusal listing the options: their values (a page shows their labels in its language),
/// at most ten, and whether there are more.
fn not_an_option<S: AsRef<str>>(
    code: &'static str,
    message: String,
    options: &[(S, S, S)],
) -> CellProblem {
    let values: Vec<Value> = options
        .iter()
        .take(OPTIONS_SHOWN)
        .map(|(v, _, _)| Value::from(v.as_ref()))
        .collect();
    CellProblem::new(code, message)
        .with("options", values)
        .with("more", options.len() > OPTIONS_SHOWN)
}

/// One option of a select field, given as `(value, English label, Chinese label)`; returns the
/// option's value. Matches the value or either label, ignoring case, surrounding spaces and
/// full-width forms, so a sheet exported with labels in either language imports back.
pub fn parse_select<S: AsRef<str>>(
    text: &str,
    options: &[(S, S, S)],
) -> Result<String, CellProblem> {
    let key = option_key(text);
    if key.is_empty() {
        return Err(CellProblem::new(
            "empty",
            "an option is expected, but the cell is empty",
        ));
    }
    match find_option(&key, options)? {
        Some(v) => Ok(v.to_owned()),
        None => Err(not_an_option(
            "not_option",
            format!(
                "{} is not one of the options: {}",
                quote(text),
                option_list(options)
            ),
            options,
        )
        .with("value", shown(text))),
    }
}

/// Separators between choices in a multi-select cell: ASCII and full-width commas and
/// semicolons, the Chinese enumeration comma and a bar.
const MULTI_SEPARATORS: [char; 6] = [',', '，', ';', '；', '、', '|'];

/// Several options of a multi-select field, split on `,` `，` `;` `；` `、` `|`; returns their
/// values in the order written, without repeats. The whole cell is tried as one option first,
/// so a label that itself contains a comma still matches.
pub fn parse_multi_select<S: AsRef<str>>(
    text: &str,
    options: &[(S, S, S)],
) -> Result<Vec<String>, CellProblem> {
    let whole = option_key(text);
    if let Ok(Some(v)) = find_option(&whole, options) {
        return Ok(vec![v.to_owned()]);
    }
    let mut chosen: Vec<String> = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for piece in text.split(MULTI_SEPARATORS) {
        let key = option_key(piece);
        if key.is_empty() {
            continue;
        }
        match find_option(&key, options)? {
            Some(v) if !chosen.iter().any(|c| c == v) => chosen.push(v.to_owned()),
            Some(_) => {}
            None => unknown.push(piece),
        }
    }
    if !unknown.is_empty() {
        let (what, verb) = if unknown.len() == 1 {
            ("is", "one of")
        } else {
            ("are", "among")
        };
        let quoted: Vec<String> = unknown.iter().map(|p| quote(p)).collect();
        let values: Vec<Value> = unknown.iter().map(|p| Value::from(shown(p))).collect();
        return Err(not_an_option(
            "not_options",
            format!(
                "{} {what} not {verb} the options: {}",
                quoted.join(", "),
                option_list(options)
            ),
            options,
        )
        .with("values", values));
    }
    if chosen.is_empty() {
        return Err(CellProblem::new(
            "empty",
            "one or more options are expected, but the cell is empty",
        ));
    }
    Ok(chosen)
}

/// The items of a cell that lists several (records of a multi-lookup): split on the separators
/// a multi-select takes, trimmed, blanks dropped.
pub fn split_list(text: &str) -> Vec<&str> {
    text.split(MULTI_SEPARATORS)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Formatting for export and display

/// A decimal with exactly `places` decimal places, rounded half away from zero like the
/// fields' own rounding; no thousands separators, so every spreadsheet and this module's parser
/// read it back.
pub fn format_decimal(value: Decimal, places: u32) -> String {
    let mut d = value.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    d.rescale(places);
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    d.to_string()
}

/// A binary float from a spreadsheet cell as people expect to see it: at most 15 significant
/// digits (what Excel keeps and shows), no exponent, no trailing zeros, no `.0` on whole
/// numbers: 0.1+0.2 gives `0.3`, 46027.0 gives `46027`, 1e20 gives `100000000000000000000`.
pub fn format_float(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    // `d.dddddddddddddde±x`: exactly 15 significant digits, correctly rounded by std.
    let sci = format!("{:.14e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::with_capacity(24);
    if f < 0.0 {
        out.push('-');
    }
    if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// A date as `YYYY-MM-DD`, the form the API uses and every spreadsheet recognises (the
/// same text as the date's own `Display`).
pub fn format_date(date: NaiveDate) -> String {
    crate::store::value::format_date(&date)
}

/// An instant as wall-clock time at `offset_minutes` east of UTC, for export.
/// An impossible offset (beyond ±24 h) shows UTC rather than failing a whole export.
pub fn to_local(t: &DateTime<Utc>, offset_minutes: i32) -> NaiveDateTime {
    let offset = fixed_offset(offset_minutes).unwrap_or(Utc.fix());
    t.with_timezone(&offset).naive_local()
}

/// An instant as `YYYY-MM-DD HH:MM` wall-clock time at `offset_minutes` east of UTC: what a
/// person reads in a spreadsheet, and what [`parse_datetime`] reads back with the same offset.
/// Seconds are dropped, as the UI shows them.
pub fn format_datetime(t: &DateTime<Utc>, offset_minutes: i32) -> String {
    to_local(t, offset_minutes)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Yes or no in the reader's language: 是/否 or Yes/No.
pub fn format_bool(value: bool, lang: Lang) -> &'static str {
    match (lang, value) {
        (Lang::ZhCn, true) => "是",
        (Lang::ZhCn, false) => "否",
        (Lang::En, true) => "Yes",
        (Lang::En, false) => "No",
    }
}

/// Several option labels in one cell, joined so [`parse_multi_select`] splits them back:
/// `A, B` in English, `甲、乙` in Chinese.
pub fn format_multi<S: AsRef<str>>(labels: &[S], lang: Lang) -> String {
    let sep = match lang {
        Lang::En => ", ",
        Lang::ZhCn => "、",
    };
    labels
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn numbers_people_write() {
        let cases = [
            ("1234", "1234"),
            ("1,234,567.89", "1234567.89"),
            ("1 234", "1234"),
            ("1\u{00A0}234.5", "1234.5"),
            ("１２３４．５", "1234.5"),
            ("１，２３４", "1234"),
            ("¥1,200.00", "1200.00"),
            ("￥1,200.00", "1200.00"),
            ("$1,200", "1200"),
            ("US$ 1,200", "1200"),
            ("1,200元", "1200"),
            ("RMB 99.5", "99.5"),
            ("-1200", "-1200"),
            ("−1200", "-1200"),
            ("+5", "5"),
            ("(1,200.00)", "-1200.00"),
            ("-¥12", "-12"),
            ("¥-12", "-12"),
            ("  .5 ", "0.5"),
            ("5.", "5"),
            ("-0", "0"),
            ("12.5%", "0.125"),
            ("0.1", "0.1"),
            ("123456789012345678.12", "123456789012345678.12"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_decimal(text), Ok(dec(want)), "{text}");
        }
    }

    #[test]
    fn plain_digits_read_straight_away_give_what_the_full_steps_give() {
        // A leading space takes the full steps.
        for text in [
            "1234", "-1200", "12.50", "-0", "-0.00", "007", "0.1", "5", "99999.99",
        ] {
            let quick = plain_number(text).expect(text);
            let full = parse_number(&format!(" {text}")).unwrap();
            assert_eq!(quick.value.to_string(), full.value.to_string(), "{text}");
            assert_eq!(
                quick.value.is_sign_negative(),
                full.value.is_sign_negative()
            );
        }
        for text in [
            "", "-", ".5", "5.", "1,234", "+5", "1e3", "１２", "12%", "--1", "1.2.3",
        ] {
            assert!(plain_number(text).is_none(), "{text}");
        }
        // Too many digits for a decimal: the full steps say so.
        let long = "1".repeat(40);
        assert!(plain_number(&long).is_none());
        assert_eq!(parse_number(&long).unwrap_err().code, "too_large");
    }

    #[test]
    fn numbers_refused_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("abc", "is not a number"),
            ("1,5", "use a point for decimals"),
            ("1.234,56", "use a point for decimals"),
            ("12,34,567", "is not a number"),
            ("1,2345", "is not a number"),
            ("1.2e3", "scientific notation"),
            ("1.23457E+11", "scientific notation"),
            ("1.2.3", "is not a number"),
            ("--5", "is not a number"),
            ("(-5)", "is not a number"),
            ("¥12%", "is not a number"),
            ("12 abc", "is not a number"),
            ("99999999999999999999999999999999", "too large"),
        ];
        for (text, want) in cases {
            let err = parse_decimal(text).unwrap_err().message;
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn number_details() {
        let n = parse_number("US$1,200").unwrap();
        assert_eq!(n.currency, Some("USD"));
        assert_eq!(parse_number("1200元").unwrap().currency, Some("CNY"));
        assert_eq!(parse_number("¥1").unwrap().currency, Some("¥"));
        assert!(parse_number("12%").unwrap().percent);
        let long = "x".repeat(500);
        assert!(parse_number(&long).unwrap_err().message.len() < 120);
    }

    #[test]
    fn percents_and_integers() {
        assert_eq!(parse_percent("12.5%"), Ok(dec("12.5")));
        assert_eq!(parse_percent("12.5"), Ok(dec("12.5")));
        assert_eq!(parse_percent("１２．５％"), Ok(dec("12.5")));
        assert!(parse_percent("¥12").is_err());
        let ints = [
            ("1,200", Ok(1200)),
            ("-1 200", Ok(-1200)),
            ("12.00", Ok(12)),
            ("(7)", Ok(-7)),
            ("９", Ok(9)),
        ];
        for (text, want) in ints {
            assert_eq!(parse_integer(text), want, "{text}");
        }
        for (text, want) in [
            ("12.5", "not a whole number"),
            ("50%", "percentage"),
            ("99999999999999999999", "too large"),
        ] {
            let err = parse_integer(text).unwrap_err().message;
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn dates_people_write() {
        let jan5 = ymd(2026, 1, 5);
        let cases = [
            "2026-01-05",
            "2026-1-5",
            "2026/1/5",
            "2026/01/05",
            "2026.1.5",
            "2026年1月5日",
            "2026 年 1 月 5 日",
            "2026年1月5号",
            "２０２６－０１－０５",
            "20260105",
            "46027",
            "46027.0",
            " 2026/1/5 0:00 ",
            "2026-01-05 00:00:00",
            "2026-01-05T00:00:00Z",
        ];
        for text in cases {
            assert_eq!(parse_date(text), Ok(jan5), "{text}");
        }
        assert_eq!(parse_date("2024-02-29"), Ok(ymd(2024, 2, 29)));
    }

    #[test]
    fn the_iso_form_is_read_exactly_and_anything_else_left_to_the_full_parser() {
        assert_eq!(iso_date("2026-01-05"), Some(ymd(2026, 1, 5)));
        assert_eq!(iso_date("0001-12-31"), Some(ymd(1, 12, 31)));
        for text in [
            "2026-1-05",
            "2026-01-5",
            "+026-01-05",
            " 2026-01-05",
            "2026/01/05",
            "2026-02-30",
            "2026-13-01",
            "20a6-01-05",
            "２０２６-01-05",
            "2026-01-05T00:00:00Z",
        ] {
            assert_eq!(iso_date(text), None, "{text}");
        }
        // The value form takes nothing but the ISO form.
        assert_eq!(
            crate::fields::date::parse_date("2026-01-05"),
            Ok(ymd(2026, 1, 5))
        );
        for text in ["2026-1-5", "+026-01-05", "2026-02-30"] {
            assert!(crate::fields::date::parse_date(text).is_err(), "{text}");
        }
    }

    #[test]
    fn dates_refused_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("2026-13-45", "no month 13"),
            ("2026-02-30", "no day 30"),
            ("2025-02-29", "no day 29"),
            ("1/5/2026", "year last"),
            ("05.01.2026", "year last"),
            (
                "2026",
                "is not a date; use 2026-01-05, 2026/1/5 or 2026年1月5日",
            ),
            ("tomorrow", "is not a date"),
            ("2026-01-05 14:30", "time of day"),
            ("46027.5", "time of day"),
            ("2026-01-05 25:00", "is not a date"),
            ("2026-1", "is not a date"),
            ("2026/1-5", "is not a date"),
        ];
        for (text, want) in cases {
            let err = parse_date(text).unwrap_err().message;
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn excel_serials() {
        let at = |s: f64| excel_serial_to_datetime(s, false);
        let d = |y, m, dd| Some(ymd(y, m, dd).and_time(NaiveTime::MIN));
        assert_eq!(at(1.0), d(1900, 1, 1));
        assert_eq!(at(59.0), d(1900, 2, 28));
        assert_eq!(at(60.0), None, "1900-02-29 never existed");
        assert_eq!(at(61.0), d(1900, 3, 1));
        assert_eq!(at(0.0), None);
        assert_eq!(at(46027.0), d(2026, 1, 5));
        assert_eq!(at(2_958_465.0), d(9999, 12, 31));
        assert_eq!(at(2_958_466.0), None);
        assert_eq!(at(-1.0), None);
        assert_eq!(at(f64::NAN), None);
        assert_eq!(
            at(46027.0 + 14.5 / 24.0),
            Some(ymd(2026, 1, 5).and_hms_opt(14, 30, 0).unwrap())
        );
        // Just below midnight rounds up to the next day, not to 23:59:59.999.
        assert_eq!(at(46_027.999_999_999_9), d(2026, 1, 6));
        assert_eq!(excel_serial_to_datetime(0.0, true), d(1904, 1, 1));
        assert_eq!(excel_serial_to_datetime(44565.0, true), d(2026, 1, 5));
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
    }

    #[test]
    fn datetimes_people_write() {
        let beijing = 480;
        let want = utc(2026, 1, 5, 6, 30, 0);
        let cases = [
            "2026-01-05 14:30",
            "2026/1/5 14:30:00",
            "2026.1.5 14:30",
            "2026年1月5日 14:30",
            "2026年1月5日14:30",
            "2026-01-05T14:30:00",
            "2026-01-05T14:30:00+08:00",
            "2026-01-05T06:30:00Z",
            "2026-01-05 06:30:00.000Z",
            "2026-01-05T01:30:00-05:00",
            "2026-01-05T14:30:00+0800",
            "2026-01-05 14:30 +08",
            "46027.604166666664",
            "２０２６／１／５　１４：３０",
        ];
        for text in cases {
            assert_eq!(parse_datetime(text, beijing), Ok(want), "{text}");
        }
        assert_eq!(
            parse_datetime("2026-01-05", beijing),
            Ok(utc(2026, 1, 4, 16, 0, 0))
        );
        assert_eq!(
            parse_datetime("2026-01-05 14:30", 0),
            Ok(utc(2026, 1, 5, 14, 30, 0))
        );
        assert_eq!(
            parse_datetime("2026-01-05 14:30:15.5", 0),
            Ok(utc(2026, 1, 5, 14, 30, 15) + TimeDelta::milliseconds(500))
        );
    }

    #[test]
    fn datetimes_refused_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("2026-01-05 24:00", "is not a date and time"),
            ("2026-01-05 14:3", "is not a date and time"),
            ("2026-01-05 14:30+25:00", "is not a date and time"),
            ("2026-13-05 14:30", "no month 13"),
            ("1/5/2026 14:30", "year last"),
            ("soon", "is not a date"),
            ("2026-01-05 14:30+中a", "is not a date and time"),
            ("2026-01-05 14:30:00.+5", "is not a date and time"),
        ];
        for (text, want) in cases {
            let err = parse_datetime(text, 480).unwrap_err().message;
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(parse_datetime("2026-01-05", 100_000).is_err());
    }

    #[test]
    fn booleans() {
        for t in [
            "是", "对", "真", "√", "✓", "✔", "true", "TRUE", " Yes ", "y", "T", "1", "１",
        ] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for t in [
            "否", "错", "假", "×", "✗", "✘", "false", "False", "NO", "n", "f", "0",
        ] {
            assert_eq!(parse_bool(t), Ok(false), "{t}");
        }
        assert!(parse_bool("").unwrap_err().message.contains("empty"));
        assert!(
            parse_bool("maybe")
                .unwrap_err()
                .message
                .contains("not yes or no")
        );
    }

    const OPTIONS: [(&str, &str, &str); 4] = [
        ("lead", "Lead", "线索"),
        ("won", "Closed won", "赢单"),
        ("lost", "Closed lost", "输单"),
        ("a_b", "Small, medium", "中小"),
    ];

    #[test]
    fn select_options() {
        let cases = [
            ("lead", "lead"),
            (" LEAD ", "lead"),
            ("Closed Won", "won"),
            ("赢单", "won"),
            ("ｌｅａｄ", "lead"),
            ("Small, medium", "a_b"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_select(text, &OPTIONS), Ok(want.to_owned()), "{text}");
        }
        let err = parse_select("Prospect", &OPTIONS).unwrap_err().message;
        assert!(err.contains("'Prospect' is not one of the options: Lead, Closed won"));
        assert!(
            parse_select(" ", &OPTIONS)
                .unwrap_err()
                .message
                .contains("empty")
        );
        // A value wins over another option's label; a label shared by two options is refused.
        let tricky = [
            ("x", "y", ""),
            ("y", "Why", ""),
            ("p", "Same", ""),
            ("q", "same", ""),
        ];
        assert_eq!(parse_select("y", &tricky), Ok("y".to_owned()));
        assert!(
            parse_select("SAME", &tricky)
                .unwrap_err()
                .message
                .contains("several")
        );
    }

    #[test]
    fn refusals_carry_a_code_and_the_parts_of_their_message() {
        let err = parse_select("Prospect", &OPTIONS).unwrap_err();
        assert_eq!(err.code, "not_option");
        assert_eq!(
            Value::Object(err.params),
            serde_json::json!({"value": "Prospect", "options": ["lead", "won", "lost", "a_b"],
                               "more": false})
        );
        let err = parse_multi_select("lead, foo", &OPTIONS).unwrap_err();
        assert_eq!(
            (err.code, &err.params["values"]),
            ("not_options", &serde_json::json!(["foo"]))
        );
        let err = parse_date("2026-13-45").unwrap_err();
        assert_eq!(
            (err.code, &err.params["month"]),
            ("no_such_month", &serde_json::json!(13))
        );
        assert_eq!(parse_date("soon").unwrap_err().code, "not_date");
        assert_eq!(parse_datetime("soon", 0).unwrap_err().code, "not_datetime");
        assert_eq!(
            parse_decimal("一百万").unwrap_err().params["value"],
            "一百万"
        );
        assert_eq!(parse_integer("12.5").unwrap_err().code, "not_whole");
        assert_eq!(parse_bool("maybe").unwrap_err().code, "not_yes_no");
        let long = "x".repeat(500);
        assert_eq!(
            parse_number(&long).unwrap_err().params["value"]
                .as_str()
                .map(|v| v.chars().count()),
            Some(41),
            "a long cell is cut short"
        );
    }

    #[test]
    fn multi_select_options() {
        let cases: [(&str, &[&str]); 7] = [
            ("lead, won", &["lead", "won"]),
            ("线索，赢单", &["lead", "won"]),
            ("线索、赢单；输单", &["lead", "won", "lost"]),
            ("lead|lead| won ;", &["lead", "won"]),
            ("Small, medium", &["a_b"]),
            ("Closed won; lead", &["won", "lead"]),
            ("赢单", &["won"]),
        ];
        for (text, want) in cases {
            let want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(parse_multi_select(text, &OPTIONS), Ok(want), "{text}");
        }
        let err = parse_multi_select("lead, foo, bar", &OPTIONS)
            .unwrap_err()
            .message;
        assert!(
            err.starts_with("'foo', 'bar' are not among the options"),
            "{err}"
        );
        assert!(parse_multi_select("、 ,", &OPTIONS).is_err());
    }

    #[test]
    fn formatting() {
        let cases = [
            ("1234.5", 2, "1234.50"),
            ("1234.565", 2, "1234.57"),
            ("-1234.565", 2, "-1234.57"),
            ("-0.001", 2, "0.00"),
            ("12", 0, "12"),
            ("0.125", 4, "0.1250"),
        ];
        for (d, places, want) in cases {
            assert_eq!(format_decimal(dec(d), places), want);
        }
        let floats = [
            (0.1 + 0.2, "0.3"),
            (46027.0, "46027"),
            (-12.5, "-12.5"),
            (-0.0, "0"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "0.00000015"),
            (123_456_789.123_456_79, "123456789.123457"),
            (1.0 / 3.0, "0.333333333333333"),
            (100.0, "100"),
        ];
        for (f, want) in floats {
            assert_eq!(format_float(f), want, "{f}");
        }
        assert_eq!(format_date(ymd(2026, 1, 5)), "2026-01-05");
        // A date's own text is the `%Y-%m-%d` the API has always written, at any year, and
        // reads back.
        for year in [-44, 0, 1, 99, 999, 2026, 9999, 10_000] {
            let date = ymd(year, 12, 31);
            assert_eq!(format_date(date), date.format("%Y-%m-%d").to_string());
            assert_eq!(format_date(date).parse::<NaiveDate>(), Ok(date));
        }
        let t = utc(2026, 1, 5, 6, 30, 59);
        assert_eq!(format_datetime(&t, 480), "2026-01-05 14:30");
        assert_eq!(format_datetime(&t, 0), "2026-01-05 06:30");
        assert_eq!(format_datetime(&t, i32::MAX), "2026-01-05 06:30");
        assert_eq!(format_bool(true, Lang::ZhCn), "是");
        assert_eq!(format_bool(false, Lang::En), "No");
        assert_eq!(format_multi(&["线索", "赢单"], Lang::ZhCn), "线索、赢单");
        assert_eq!(Lang::from_tag("zh-CN"), Lang::ZhCn);
        assert_eq!(Lang::from_tag("en-US"), Lang::En);
    }

    /// Random strings over the characters the parsers care about: errors are fine, panics
    /// are not.
    #[test]
    fn parsers_never_panic() {
        let alphabet: Vec<char> =
            "0123456789+-.,:/ TtZze%¥$()年月日号元１２．，－：（）＋中a\u{3000}"
                .chars()
                .collect();
        let options = [("a", "A", "甲")];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let text: String = (0..len)
                .map(|i| alphabet[((seed >> (i % 8 * 8)) as usize + i * 7) % alphabet.len()])
                .collect();
            let _ = parse_number(&text);
            let _ = parse_integer(&text);
            let _ = parse_date(&text);
            let _ = parse_datetime(&text, 480);
            let _ = parse_bool(&text);
            let _ = parse_multi_select(&text, &options);
        }
    }

    #[test]
    fn formatted_values_parse_back() {
        let t = utc(2026, 1, 5, 6, 30, 0);
        assert_eq!(parse_datetime(&format_datetime(&t, 480), 480), Ok(t));
        assert_eq!(
            parse_decimal(&format_decimal(dec("-1.5"), 2)),
            Ok(dec("-1.50"))
        );
        for lang in [Lang::En, Lang::ZhCn] {
            assert_eq!(parse_bool(format_bool(true, lang)), Ok(true));
            let joined = format_multi(&["Lead", "赢单"], lang);
            assert_eq!(
                parse_multi_select(&joined, &OPTIONS),
                Ok(vec!["lead".to_owned(), "won".to_owned()])
            );
        }
    }
}
