//! Cells as text: what an export writes so a spreadsheet never runs it as a formula, and what
//! an import undoes of that.

use std::borrow::Cow;

/// Characters that make Excel, LibreOffice or WPS treat a typed cell as a formula (or, for
/// tab and carriage return, let one slip past a naive check).
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell made safe to open: text starting with `= + - @`, a tab or a carriage return gets a
/// leading `'`, which spreadsheets show as text and never evaluate ("CSV injection"). Plain
/// numbers such as `-1200` or `+5` stay as they are: a number is never a formula.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some(c) if TRIGGERS.contains(&c) && !is_plain_number(text) => {
            Cow::Owned(format!("'{text}"))
        }
        _ => Cow::Borrowed(text),
    }
}

/// The cell as it was before [`neutralise`]: a `'` in front of a formula character is dropped,
/// so an exported file imports back to the same values.
pub fn restore(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(TRIGGERS) => rest,
        _ => text,
    }
}

fn is_plain_number(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().filter(|b| *b == b'.').count() <= 1
        && body.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_are_not() {
        let cases = [
            ("=1+2", "'=1+2"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-1200", "-1200"),
            ("-12.50", "-12.50"),
            ("+5", "+5"),
            ("-", "'-"),
            ("上海", "上海"),
            ("", ""),
            ("a=b", "a=b"),
        ];
        for (cell, want) in cases {
            assert_eq!(neutralise(cell), want, "{cell:?}");
            assert_eq!(restore(&neutralise(cell)), cell, "{cell:?} back");
        }
        assert_eq!(restore("'plain"), "'plain");
    }
}
