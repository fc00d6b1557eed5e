//! The meta-schema: a JSON Schema that every entity definition must satisfy before it is read
//! any further. Shipped in the binary and served at `GET /api/meta-schema`.

use std::sync::LazyLock;

use jsonschema::{Draft, Validator};
use serde_json::Value;

use crate::error::FieldError;

pub const META_SCHEMA_JSON: &str = include_str!("meta-schema.json");

pub static META_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(META_SCHEMA_JSON).expect("meta-schema.json is valid JSON")
});

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&META_SCHEMA)
        .expect("meta-schema.json is a valid JSON Schema")
});

/// Every way `doc` breaks the meta-schema, each with a dotted path (`schema.properties.a`).
pub fn validate(doc: &Value) -> Vec<FieldError> {
    VALIDATOR
        .iter_errors(doc)
        .map(|e| FieldError::new(pointer_to_path(e.instance_path().as_str()), e.to_string()))
        .collect()
}

/// `/schema/properties/budget` → `schema.properties.budget`; the root is `definition`.
pub fn pointer_to_path(pointer: &str) -> String {
    let path = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".");
    if path.is_empty() {
        "definition".to_owned()
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_meta_schema_compiles_and_explains() {
        let errors = validate(&json!({
            "name": "Bad Name",
            "label": {"en": "x"},
            "schema": {"properties": {"a": {"x-kind": "nope"}}}
        }));
        let paths: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(paths.contains(&"name"), "{errors:?}");
        assert!(paths.contains(&"label"), "{errors:?}");
        assert!(paths.contains(&"schema.properties.a.x-kind"), "{errors:?}");
    }
}
