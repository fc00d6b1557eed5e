//! A package's sample records: `sample/<entity>.json`, each a list of records. A record may
//! name itself with `"$key"`; a lookup value `{"$ref": "key"}` points at a record named so
//! (in this package or one installed before), and `{"$days": n}` is the date `n` days from
//! the install (`"years": -30` moves it back, `"time": "10:30"` makes it a date-time), so the
//! reminders of a fresh demo have something to remind of; `{"$installer": true}` is the user
//! installing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use super::Package;
use crate::auth::Access;
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::events::Origin;
use crate::records::write::{self, Writer};
use crate::schema::compiled::Catalog;
use crate::store::Tx;
use crate::store::templates::{self as store, ItemRow};

fn shifted(day: NaiveDate, years: i32) -> NaiveDate {
    let year = day.year() + years;
    day.with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, day.month(), 28))
        .unwrap_or(day)
}

fn resolve(
    value: &Value,
    keys: &HashMap<String, String>,
    today: NaiveDate,
    installer: &str,
) -> std::result::Result<Value, String> {
    match value {
        Value::Object(o) if o.contains_key("$installer") => Ok(json!(installer)),
        Value::Object(o) if o.contains_key("$ref") => {
            let key = o["$ref"].as_str().unwrap_or_default();
            keys.get(key)
                .map(|id| json!(id))
                .ok_or_else(|| format!("no sample record has the key '{key}'"))
        }
        Value::Object(o) if o.contains_key("$days") => {
            let days = o["$days"].as_i64().ok_or("$days must be a whole number")?;
            let years = o.get("years").and_then(Value::as_i64).unwrap_or(0);
            let day = shifted(
                today + Duration::days(days),
                i32::try_from(years).unwrap_or(0),
            );
            Ok(match o.get("time").and_then(Value::as_str) {
                Some(time) => json!(format!("{}T{time}:00Z", day.format("%Y-%m-%d"))),
                None => json!(day.format("%Y-%m-%d").to_string()),
            })
        }
        Value::Array(items) => items
            .iter()
            .map(|i| resolve(i, keys, today, installer))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// Creates the package's sample records inside the install transaction, through the write
/// path with the template origin (so no automation fires for them). Returns how many were
/// created.
pub async fn load(ctx: &Context, tx: &mut Tx, access: &Access, package: &Package) -> Result<usize> {
    let catalog = Arc::new(Catalog::load_in(tx, 0).await?);
    let writer = Writer::with_catalog(ctx, catalog, access, Origin::Template);
    let mut keys: HashMap<String, String> = store::items_of_kind(tx, "record")
        .await?
        .into_iter()
        .collect();
    let today = Utc::now().date_naive();
    let installer = access.actor_id().unwrap_or_default();
    let mut count = 0;
    for entity_name in &package.manifest.sample_data {
        let path = format!("sample/{entity_name}.json");
        for (i, record) in package.list(&path)?.into_iter().enumerate() {
            let at = format!("{path}[{i}]");
            let Value::Object(fields) = record else {
                return Err(Error::invalid(
                    format!("{at} is not an object"),
                    vec![FieldError::new(at, "must be an object")],
                ));
            };
            let key = fields
                .get("$key")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut payload = Map::new();
            for (name, value) in fields {
                if name == "$key" {
                    continue;
                }
                let value = resolve(&value, &keys, today, installer).map_err(|m| {
                    Error::invalid(
                        format!("{at}.{name}: {m}"),
                        vec![FieldError::new(format!("{at}.{name}"), m)],
                    )
                })?;
                payload.insert(name, value);
            }
            let payload = Value::Object(payload);
            let created = write::create(tx, &writer, entity_name, &payload, Vec::new())
                .await
                .map_err(|e| {
                    Error::invalid(format!("sample record {at} was refused: {e}"), Vec::new())
                })?
                .record;
            count += 1;
            if let (Some(key), Some(id)) = (key, created["id"].as_str()) {
                store::save_item(
                    tx,
                    &package.manifest.name,
                    &ItemRow {
                        kind: "record".into(),
                        key: key.clone(),
                        object_id: id.to_owned(),
                        baseline: json!({"entity": entity_name}),
                    },
                )
                .await?;
                keys.insert(key, id.to_owned());
            }
        }
    }
    Ok(count)
}
