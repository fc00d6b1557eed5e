//! The typed answers around entity definitions (which are documents themselves): an archived
//! entity, an archived field, a saved version.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::wire::timestamp;

/// What `DELETE /api/entities/{entity}` did: the table kept under an archive, and its records.
#[derive(Debug, Clone, Serialize)]
pub struct ArchivedEntity {
    pub entity: String,
    pub archived: bool,
    pub archive_id: i64,
    pub records: i64,
    /// The tables renamed out of the way (the records' and their join tables).
    pub tables: Vec<String>,
}

/// A field removed from a definition, kept with its values until restored.
#[derive(Debug, Clone, Serialize)]
pub struct ArchivedFieldView {
    /// The archive's id, for `POST …/archived-fields/{id}/restore`.
    pub id: i64,
    pub field: String,
    /// `{"schema": <property>, "required": bool}` as it was when removed.
    pub definition: Value,
    /// How many records had a value.
    pub values: i64,
    #[serde(with = "timestamp")]
    pub archived_at: DateTime<Utc>,
}

/// A saved version of a definition, and the changes that made it.
#[derive(Debug, Clone, Serialize)]
pub struct EntityVersion {
    pub version: i64,
    pub changes: Value,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    pub definition: Value,
}
