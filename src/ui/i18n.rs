//! UI strings: one catalogue per language (`i18n/en.json`, `i18n/zh-CN.json`, embedded), and
//! how a request's language is chosen. Labels of entities, fields and options are not here:
//! they come from the metadata (`x-label` per language).

use std::sync::OnceLock;

use serde_json::Value;

/// The languages the pages speak, the first being the fallback for missing labels.
pub const LANGUAGES: &[&str] = &["en", "zh-CN"];

const EN: &str = include_str!("i18n/en.json");
const ZH: &str = include_str!("i18n/zh-CN.json");

fn catalogues() -> &'static [(&'static str, Value); 2] {
    static ALL: OnceLock<[(&'static str, Value); 2]> = OnceLock::new();
    ALL.get_or_init(|| {
        // The catalogues are compiled in and checked by a unit test, so a parse failure is a
        // bug caught before release; an empty catalogue still renders keys rather than panic.
        let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
        [("en", parse(EN)), ("zh-CN", parse(ZH))]
    })
}

/// A language and its strings.
#[derive(Clone, Copy)]
pub struct Lang {
    pub code: &'static str,
    pub strings: &'static Value,
}

impl Lang {
    /// The catalogue of a language code (`zh`, `zh-CN`, `zh-Hans` → Chinese; else English).
    pub fn of(code: &str) -> Lang {
        let all = catalogues();
        let chinese = code.to_ascii_lowercase().starts_with("zh");
        let (code, strings) = if chinese { &all[1] } else { &all[0] };
        Lang { code, strings }
    }

    /// The first supported language of an `Accept-Language` header, by preference.
    pub fn from_accept(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0f32);
            let supported = tag.starts_with("zh") || tag.starts_with("en");
            if supported && best.as_ref().is_none_or(|(b, _)| q > *b) {
                best = Some((q, Lang::of(&tag)));
            }
        }
        best.map(|(_, lang)| lang)
    }

    pub fn is_zh(&self) -> bool {
        self.code == "zh-CN"
    }

    /// A string by key; the key itself when missing (a test keeps the catalogues complete).
    pub fn t(&self, key: &str) -> &'static str {
        self.strings
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| {
                let all = catalogues();
                all[0].1.get(key).and_then(Value::as_str).unwrap_or("")
            })
    }

    /// A string with `{name}` placeholders filled in.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut out = self.t(key).to_owned();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    /// A label from metadata (`{"en": …, "zh-CN": …}` or a plain string) in this language,
    /// falling back to English, then to any language, then to `fallback`.
    pub fn label(&self, label: Option<&Value>, fallback: &str) -> String {
        match label {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Object(map)) => map
                .get(self.code)
                .or_else(|| map.get("en"))
                .or_else(|| map.values().next())
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(fallback)
                .to_owned(),
            _ => fallback.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                let path = format!("{prefix}{k}");
                if v.is_object() {
                    keys(v, &format!("{path}."), out);
                } else {
                    assert!(v.as_str().is_some_and(|s| !s.is_empty()), "{path} is empty");
                    out.insert(path);
                }
            }
        }
    }

    #[test]
    fn every_key_is_in_every_catalogue() {
        let all = catalogues();
        let mut sets = Vec::new();
        for (code, value) in all.iter() {
            assert!(value.is_object(), "{code}.json does not parse");
            let mut set = BTreeSet::new();
            keys(value, "", &mut set);
            sets.push((code, set));
        }
        let (first, base) = &sets[0];
        for (code, set) in &sets[1..] {
            let missing: Vec<_> = base.difference(set).collect();
            let extra: Vec<_> = set.difference(base).collect();
            assert!(
                missing.is_empty(),
                "{code} lacks keys of {first}: {missing:?}"
            );
            assert!(extra.is_empty(), "{first} lacks keys of {code}: {extra:?}");
        }
    }

    #[test]
    fn every_key_the_templates_use_exists() {
        let en = Lang::of("en");
        for file in super::super::render::TEMPLATES.files() {
            let text = file.contents_utf8().unwrap_or_default();
            for (i, _) in text.match_indices("s.") {
                let before = text[..i].chars().last();
                if !matches!(before, Some('{') | Some(' ') | Some('(')) {
                    continue;
                }
                let key: String = text[i + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if key.is_empty() || key == "js" {
                    continue;
                }
                assert!(
                    en.strings.get(&key).is_some(),
                    "{} uses s.{key}, which no catalogue has",
                    file.path().display()
                );
            }
        }
    }

    #[test]
    fn languages_are_negotiated() {
        assert_eq!(
            Lang::from_accept("zh-CN,zh;q=0.9,en;q=0.8").unwrap().code,
            "zh-CN"
        );
        assert_eq!(Lang::from_accept("en-US,en;q=0.9").unwrap().code, "en");
        assert_eq!(Lang::from_accept("fr;q=1, zh;q=0.5").unwrap().code, "zh-CN");
        assert!(Lang::from_accept("fr").is_none());
        let zh = Lang::of("zh-CN");
        assert_eq!(zh.f("records_n", &[("n", "3")]), "3 条");
        let label = serde_json::json!({"en": "Customer", "zh-CN": "客户"});
        assert_eq!(zh.label(Some(&label), "x"), "客户");
        assert_eq!(Lang::of("en").label(None, "x"), "x");
    }
}
