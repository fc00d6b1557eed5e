//! Records in and out of spreadsheets: CSV and XLSX exports of any list, imports with a
//! mapping, a dry run, upserts by a key and undo. Cells go through the field kinds' own text
//! forms both ways; reads go through the one read query and writes through the one write path.

pub mod cells;
pub mod export;
pub mod import;
pub mod shapes;
pub mod sheet;
pub mod xlsx;

use chrono::{Offset, Utc};

use crate::auth::Access;
use crate::fields::text_form::Lang;
use crate::schema::definition::FieldDef;

/// The caller's language and the offset their clock shows now (datetimes are written and read
/// as wall-clock time where the user is).
#[derive(Debug, Clone, Copy)]
pub struct Locale {
    pub lang: Lang,
    pub offset_minutes: i32,
}

impl Locale {
    /// The actor's language and time zone (`fallback_zone` when theirs is unknown); English
    /// and UTC for the system.
    pub fn of(access: &Access, fallback_zone: chrono_tz::Tz) -> Locale {
        let Some(actor) = access.actor() else {
            return Locale {
                lang: Lang::En,
                offset_minutes: 0,
            };
        };
        let zone = actor
            .time_zone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(fallback_zone);
        let offset = Utc::now()
            .with_timezone(&zone)
            .offset()
            .fix()
            .local_minus_utc()
            / 60;
        Locale {
            lang: Lang::from_tag(&actor.language),
            offset_minutes: offset,
        }
    }
}

/// A field's label in a language (English, then the name, when it has none).
pub fn field_label(field: &FieldDef, lang: Lang) -> String {
    let key = match lang {
        Lang::En => "en",
        Lang::ZhCn => "zh-CN",
    };
    let labels = field.schema.get("x-label");
    labels
        .and_then(|l| l.get(key).or_else(|| l.get("en")))
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| field.name.to_string(), str::to_owned)
}

/// Labels of the system columns an export may carry, in a language.
pub fn system_label(name: &str, lang: Lang) -> &str {
    match (name, lang) {
        ("id", _) => "ID",
        ("owner", Lang::En) => "Owner",
        ("owner", Lang::ZhCn) => "负责人",
        ("department", Lang::En) => "Department",
        ("department", Lang::ZhCn) => "部门",
        ("created_at", Lang::En) => "Created",
        ("created_at", Lang::ZhCn) => "创建时间",
        ("updated_at", Lang::En) => "Updated",
        ("updated_at", Lang::ZhCn) => "更新时间",
        ("created_by", Lang::En) => "Created by",
        ("created_by", Lang::ZhCn) => "创建人",
        ("version", Lang::En) => "Version",
        ("version", Lang::ZhCn) => "版本",
        ("tags", Lang::En) => "Tags",
        ("tags", Lang::ZhCn) => "标签",
        (other, _) => other,
    }
}
