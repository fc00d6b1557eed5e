//! Where a form or a view stands, shown beside its document ([`Document`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::layouts::{FormRow, ViewRow};
use crate::wire::{Document, Versioned, timestamp};

/// A form: its document (`name`, `label`, `sections`) and where it stands.
pub type FormView = Document<FormMeta>;
/// A view: its document (`entity`, `name`, `kind`, columns, filter…) and where it stands.
pub type ViewView = Document<ViewMeta>;

#[derive(Debug, Clone, Serialize)]
pub struct FormMeta {
    pub entity: String,
    pub version: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl FormMeta {
    pub fn of(row: &FormRow) -> FormMeta {
        FormMeta {
            entity: row.entity.clone(),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewMeta {
    pub id: String,
    /// The user whose personal view it is; `null` for a shared view.
    pub owner: Option<String>,
    pub version: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl ViewMeta {
    pub fn of(row: &ViewRow) -> ViewMeta {
        ViewMeta {
            id: row.id.clone(),
            owner: row.owner.clone(),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl Versioned for FormMeta {
    fn version(&self) -> i64 {
        self.version
    }
}

impl Versioned for ViewMeta {
    fn version(&self) -> i64 {
        self.version
    }
}
