//! System settings (S1): the parameters a company sets once — reminder lead times, decimal
//! places, time zone, language, company name, mail delivery. Every key has a default and a
//! check; a change is validated as a whole and refused with every problem listed.

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::auth::{Access, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::store::{Executor, settings as store};

/// The kinds of document whose amounts have a configurable number of decimal places.
pub const DECIMAL_KINDS: &[&str] = &["quotes", "orders", "contracts", "products"];
/// Settings every signed-in user may read (the UI formats with them).
const PUBLIC: &[&str] = &[
    "company_name",
    "time_zone",
    "default_language",
    "decimal_places",
];

fn defaults() -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("admin_email".into(), Value::Null);
    out.insert("company_name".into(), json!(""));
    out.insert("birthday_reminder_days".into(), json!(7));
    out.insert("receivables_reminder_days".into(), json!(3));
    out.insert(
        "decimal_places".into(),
        json!({"quotes": 2, "orders": 2, "contracts": 2, "products": 2}),
    );
    out.insert("time_zone".into(), json!("UTC"));
    out.insert("default_language".into(), json!("en"));
    out.insert("smtp_url".into(), Value::Null);
    out.insert("smtp_sender".into(), json!("Tessera <tessera@localhost>"));
    out.insert("run_log_days".into(), json!(30));
    out.insert("public_url".into(), json!("http://localhost:8080"));
    out.insert("webhooks_allow_private".into(), json!(false));
    out
}

/// The current settings: defaults, overlaid with what was changed.
#[derive(Debug, Clone)]
pub struct Settings(Map<String, Value>);

/// The defaults alone (pages that must render even when the database cannot be read).
impl Default for Settings {
    fn default() -> Self {
        Settings(defaults())
    }
}

impl Settings {
    pub async fn load(ex: &mut impl Executor) -> Result<Settings> {
        let mut all = defaults();
        for (key, value) in store::all(ex).await? {
            if all.contains_key(&key) {
                all.insert(key, value);
            }
        }
        Ok(Settings(all))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    fn int(&self, key: &str, fallback: i64) -> i64 {
        self.0.get(key).and_then(Value::as_i64).unwrap_or(fallback)
    }

    pub fn birthday_reminder_days(&self) -> i64 {
        self.int("birthday_reminder_days", 7)
    }

    pub fn run_log_days(&self) -> i64 {
        self.int("run_log_days", 30)
    }

    /// Decimal places for a kind of document (`orders`, …); 2 for anything else.
    pub fn decimal_places(&self, kind: &str) -> u32 {
        self.0
            .get("decimal_places")
            .and_then(|d| d.get(kind))
            .and_then(Value::as_u64)
            .map_or(2, |n| n.min(8) as u32)
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.0
            .get("time_zone")
            .and_then(Value::as_str)
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    pub fn default_language(&self) -> String {
        self.0
            .get("default_language")
            .and_then(Value::as_str)
            .unwrap_or("en")
            .to_owned()
    }

    pub fn smtp_url(&self) -> Option<String> {
        self.0
            .get("smtp_url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The address people reach this server at, for links in mail (no trailing slash).
    pub fn public_url(&self) -> String {
        self.0
            .get("public_url")
            .and_then(Value::as_str)
            .unwrap_or("http://localhost:8080")
            .trim_end_matches('/')
            .to_owned()
    }

    /// Whether webhooks may target loopback, link-local and private addresses (local
    /// integrations and tests; off by default against SSRF).
    pub fn webhooks_allow_private(&self) -> bool {
        self.0
            .get("webhooks_allow_private")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn smtp_sender(&self) -> String {
        self.0
            .get("smtp_sender")
            .and_then(Value::as_str)
            .unwrap_or("Tessera <tessera@localhost>")
            .to_owned()
    }

    /// As shown to a caller: everything for those who manage settings (the SMTP password
    /// masked), the formatting settings for everyone else.
    pub fn shown(&self, access: &Access) -> Map<String, Value> {
        let full = access.has(Special::ManageSettings);
        let mut out = Map::new();
        for (key, value) in &self.0 {
            if !full && !PUBLIC.contains(&key.as_str()) {
                continue;
            }
            let value = match (key.as_str(), value.as_str()) {
                ("smtp_url", Some(url)) => Value::String(mask_password(url)),
                _ => value.clone(),
            };
            out.insert(key.clone(), value);
        }
        out
    }
}

/// `smtps://user:secret@host` → `smtps://user:***@host`.
fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    match (rest.find(':'), rest.rfind('@')) {
        (Some(colon), Some(at)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &rest[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

pub(crate) fn check(
    key: &str,
    value: &Value,
    current: &Value,
) -> std::result::Result<Value, String> {
    let days = |v: &Value| match v.as_i64() {
        Some(n) if (0..=365).contains(&n) => Ok(json!(n)),
        _ => Err("must be a whole number of days from 0 to 365".to_owned()),
    };
    match key {
        "admin_email" => match value {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
            Value::String(s) if crate::fields::is_email(s.trim()) => Ok(json!(s.trim())),
            _ => Err("must be an email address".into()),
        },
        "company_name" => match value.as_str() {
            Some(s) if s.chars().count() <= 200 => Ok(json!(s.trim())),
            _ => Err("must be text of at most 200 characters".into()),
        },
        "birthday_reminder_days" | "receivables_reminder_days" => days(value),
        "run_log_days" => match value.as_i64() {
            Some(n) if (1..=3650).contains(&n) => Ok(json!(n)),
            _ => Err("must be a whole number of days from 1 to 3650".into()),
        },
        "decimal_places" => {
            let Some(given) = value.as_object() else {
                return Err(format!(
                    "must be an object with some of: {}",
                    DECIMAL_KINDS.join(", ")
                ));
            };
            let mut merged = current.as_object().cloned().unwrap_or_default();
            for (kind, places) in given {
                if !DECIMAL_KINDS.contains(&kind.as_str()) {
                    return Err(format!(
                        "'{kind}' is not one of {}",
                        DECIMAL_KINDS.join(", ")
                    ));
                }
                match places.as_u64() {
                    Some(n) if n <= 6 => {
                        merged.insert(kind.clone(), json!(n));
                    }
                    _ => return Err(format!("{kind}: must be a whole number from 0 to 6")),
                }
            }
            Ok(Value::Object(merged))
        }
        "time_zone" => match value.as_str().map(str::parse::<chrono_tz::Tz>) {
            Some(Ok(zone)) => Ok(json!(zone.name())),
            _ => Err("must be an IANA time zone such as Asia/Shanghai or Europe/Berlin".into()),
        },
        "default_language" => match value.as_str() {
            Some(l) if crate::auth::service::LANGUAGES.contains(&l) => Ok(json!(l)),
            _ => Err("must be en or zh-CN".into()),
        },
        "smtp_url" => match value {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
            Value::String(s) => {
                crate::mail::deliver::check_smtp_url(s.trim()).map(|()| json!(s.trim()))
            }
            _ => Err("must be an smtp:// or smtps:// URL".into()),
        },
        "public_url" => match value.as_str().map(str::trim) {
            Some(u) if (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8 => {
                Ok(json!(u.trim_end_matches('/')))
            }
            _ => Err("must be the http:// or https:// address people reach Tessera at".into()),
        },
        "webhooks_allow_private" => match value {
            Value::Bool(b) => Ok(json!(b)),
            _ => Err("must be true or false".into()),
        },
        "smtp_sender" => match value.as_str() {
            Some(s) if s.trim().parse::<lettre::message::Mailbox>().is_ok() => Ok(json!(s.trim())),
            _ => Err("must be a mailbox such as \"Acme CRM <crm@acme.example>\"".into()),
        },
        _ => Err("is not a setting".into()),
    }
}

/// The settings the caller may read, by key.
pub async fn get(ctx: &Context, access: &Access) -> Result<Map<String, Value>> {
    Ok(Settings::load(&mut &ctx.db).await?.shown(access))
}

/// Changes some settings; every problem is listed in one 422 and nothing is saved then.
pub async fn update(
    ctx: &Context,
    access: &Access,
    changes: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    access.require(Special::ManageSettings)?;
    let current = Settings::load(&mut &ctx.db).await?;
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in changes {
        let now = current.get(key).cloned().unwrap_or(Value::Null);
        match check(key, value, &now) {
            Ok(v) => checked.push((key.clone(), v)),
            Err(message) => problems.push(FieldError::new(key.clone(), message)),
        }
    }
    if !problems.is_empty() {
        return Err(Error::invalid("some settings are not valid", problems));
    }
    let now = Utc::now();
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                for (key, value) in &checked {
                    store::put(tx, key, value, now).await?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(Settings::load(&mut &ctx.db).await?.shown(access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_smtp_password() {
        assert_eq!(
            mask_password("smtps://crm:s3cret@mail.example:465"),
            "smtps://crm:***@mail.example:465"
        );
        assert_eq!(
            mask_password("smtp://127.0.0.1:2525"),
            "smtp://127.0.0.1:2525"
        );
    }

    #[test]
    fn checks_each_kind_of_setting() {
        assert!(check("birthday_reminder_days", &json!(400), &Value::Null).is_err());
        assert_eq!(
            check("time_zone", &json!("Asia/Shanghai"), &Value::Null),
            Ok(json!("Asia/Shanghai"))
        );
        assert!(check("time_zone", &json!("Mars/Base"), &Value::Null).is_err());
        assert_eq!(
            check(
                "decimal_places",
                &json!({"orders": 3}),
                &json!({"orders": 2, "quotes": 2})
            ),
            Ok(json!({"orders": 3, "quotes": 2}))
        );
        assert!(check("decimal_places", &json!({"orders": 9}), &Value::Null).is_err());
        assert!(check("nonsense", &json!(1), &Value::Null).is_err());
    }
}
