//! Pieces shared by the typed bodies and answers of the fixed resources (users, roles,
//! automations, mail templates…): whole lists, times as the API writes them, and properties a
//! change may set to `null`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A whole list, unpaged: `{"items": […]}`.
#[derive(Debug, Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T> Items<T> {
    pub fn of<R>(rows: impl IntoIterator<Item = R>, shown: impl FnMut(R) -> T) -> Items<T> {
        Items {
            items: rows.into_iter().map(shown).collect(),
        }
    }
}

/// A time as the API writes it: RFC 3339 in UTC with microseconds (`#[serde(with = "…")]`).
pub mod timestamp {
    use super::*;

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::store::value::format_datetime(t))
    }

    /// The same for a time that may be missing (`null`).
    pub mod option {
        use super::*;

        pub fn serialize<S: serde::Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
    }
}

/// A property of a change that may be left out (`None`), set to `null` (`Some(None)`) or set
/// to a value: `#[serde(default, deserialize_with = "wire::nullable")]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A stored document as the API shows it (a form, a view, a dashboard): the document's own
/// properties and, beside them, where it stands (`M`: its id, version and times). A property
/// of the document that `M` also has is left out: `M` says it.
#[derive(Debug, Serialize)]
pub struct Document<M> {
    #[serde(flatten)]
    pub document: Map<String, Value>,
    #[serde(flatten)]
    pub meta: M,
}

impl<M: Serialize> Document<M> {
    pub fn new(document: Value, meta: M) -> Document<M> {
        let mut document = match document {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if let Ok(Value::Object(said)) = serde_json::to_value(&meta) {
            document.retain(|key, _| !said.contains_key(key));
        }
        Document { document, meta }
    }
}

/// A resource saved with a version: the API answers it with the version as its `ETag`, and a
/// change guarded by `If-Match` must name it.
pub trait Versioned {
    fn version(&self) -> i64;
}

impl<M: Versioned> Versioned for Document<M> {
    fn version(&self) -> i64 {
        self.meta.version()
    }
}
