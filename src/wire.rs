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

/// A value read into a typed body (a template package's automation, say), refused as a request
/// body is: 422 naming the property that does not fit.
pub fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> crate::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        unfit(path, &error.into_inner().to_string())
    })
}

/// The 422 for a value that does not fit its type, at `path` (`.` for the whole).
pub fn unfit(path: String, message: &str) -> crate::Error {
    use crate::error::{Error, FieldError};
    // A missing property is named in the message, not the path (serde_path_to_error's path
    // ends at an unknown one already).
    let field = match (named_property(message), path.as_str()) {
        (Some(name), ".") => name.to_owned(),
        (Some(name), _) if !path.ends_with(name) => format!("{path}.{name}"),
        _ => path,
    };
    if field == "." {
        Error::invalid(format!("the body does not fit: {message}"), Vec::new())
    } else {
        Error::invalid(
            format!("{field}: {message}"),
            vec![FieldError::new(field, message)],
        )
    }
}

/// The property serde names in "unknown field `x`, expected …" or "missing field `x`".
fn named_property(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next()
}
