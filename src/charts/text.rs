//! Text in SVG without a font at hand: widths estimated per character (CJK and full-width
//! forms one em, Latin about 0.55 em), fitting with an ellipsis, and XML escaping.

/// Whether a character is drawn about one em wide (CJK ideographs, kana, Hangul, full-width
/// forms and CJK punctuation).
fn wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD)
}

/// The width of a character in ems.
fn em(c: char) -> f64 {
    if wide(c) {
        1.0
    } else if c.is_ascii_uppercase() || matches!(c, 'm' | 'w' | 'M' | 'W' | '%') {
        0.7
    } else if matches!(
        c,
        'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' '
    ) {
        0.3
    } else {
        0.55
    }
}

/// The estimated width of `text` at `size` pixels.
pub fn width(text: &str, size: f64) -> f64 {
    text.chars().map(em).sum::<f64>() * size
}

/// `text` cut to fit `max` pixels at `size`, with an ellipsis when cut.
pub fn fit(text: &str, size: f64, max: f64) -> String {
    if width(text, size) <= max {
        return text.to_owned();
    }
    let ellipsis = em('…') * size;
    let mut out = String::new();
    let mut used = 0.0;
    for c in text.chars() {
        let w = em(c) * size;
        if used + w + ellipsis > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_twice_as_wide_as_latin() {
        assert_eq!(width("销售漏斗", 10.0), 40.0);
        assert!(width("lead", 10.0) < 25.0);
        assert_eq!(fit("赢单", 10.0, 100.0), "赢单");
        let cut = fit("一二三四五六七八九十", 10.0, 50.0);
        assert!(width(&cut, 10.0) <= 50.0, "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
