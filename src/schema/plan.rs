//! Schema sync as a pure function: the old definition and the new one (plus the renames and
//! restores the caller asked for) give a [`Plan`] — the checks the existing data must pass and
//! the steps that change the table. Nothing here touches a database; `store::ddl` turns steps
//! and checks into SQL, and the schema service runs them in one transaction.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::definition::{CompoundIndex, EntityDef, FieldDef};
use super::names::FieldName;
use crate::fields::{Kind, LONG_TEXT_MAX, TEXT_MAX};
use crate::store::{ColumnType, Ident};

/// Where a field's values are right now, before the plan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A column of the entity table (its current name: the old name of a renamed field, the
    /// archive name of a field being restored).
    Column(Ident),
    /// A join table (multi lookups).
    Join(Ident),
}

/// A field removed earlier whose data waits in an archive column or table.
#[derive(Debug, Clone)]
pub struct Restore {
    pub archive_id: i64,
    pub storage: Storage,
}

/// A question for the data: how many records would this change break?
#[derive(Debug, Clone)]
pub enum Check {
    /// Records without a value (before `required`).
    NoEmpty { field: FieldName, storage: Storage },
    /// Records sharing a value (before `unique`).
    NoDuplicates {
        field: FieldName,
        column: Ident,
        ty: ColumnType,
    },
    /// Records using options about to be removed.
    OptionsUnused {
        field: FieldName,
        column: Ident,
        multi: bool,
        options: Vec<String>,
    },
    /// Records with any value, for changes that only an empty field can take.
    NoValues {
        field: FieldName,
        storage: Storage,
        reason: String,
    },
    /// Records at all, for a new required field without a default (or similar).
    NoRecords { field: FieldName, reason: String },
    /// Text longer than `max` characters.
    LengthAtMost {
        field: FieldName,
        column: Ident,
        max: u64,
    },
    /// Text shorter than `min` characters.
    LengthAtLeast {
        field: FieldName,
        column: Ident,
        min: u64,
    },
    /// Numbers outside a range. `scale` is set for decimal columns.
    Range {
        field: FieldName,
        column: Ident,
        ty: ColumnType,
        min: Option<Decimal>,
        max: Option<Decimal>,
    },
    /// Decimals with more places than `to` (before reducing the scale), or non-integers when
    /// `to` is 0 and the target is an integer.
    FitsScale {
        field: FieldName,
        column: Ident,
        from: u32,
        to: u32,
    },
    /// Every stored text must be a valid value of the new field definition (email, phone, url,
    /// select option, pattern). Checked in Rust, a page at a time.
    ValuesValid {
        field: FieldName,
        column: Ident,
        new: Box<FieldDef>,
    },
}

impl Check {
    pub fn field(&self) -> &FieldName {
        match self {
            Check::NoEmpty { field, .. }
            | Check::NoDuplicates { field, .. }
            | Check::OptionsUnused { field, .. }
            | Check::NoValues { field, .. }
            | Check::NoRecords { field, .. }
            | Check::LengthAtMost { field, .. }
            | Check::LengthAtLeast { field, .. }
            | Check::Range { field, .. }
            | Check::FitsScale { field, .. }
            | Check::ValuesValid { field, .. } => field,
        }
    }
}

/// How stored values change when a field changes kind or scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    IntegerToDecimal {
        scale: u32,
    },
    Rescale {
        from: u32,
        to: u32,
    },
    DecimalToInteger {
        scale: u32,
    },
    DateToDatetime,
    SelectToMulti,
    /// Drop the storage and create it anew (only when no value would be lost).
    Replace,
}

#[derive(Debug, Clone)]
pub enum Step {
    CreateTable,
    AddField {
        field: FieldName,
    },
    RestoreField {
        field: FieldName,
        restore: Restore,
    },
    RenameField {
        from: FieldName,
        to: FieldName,
    },
    ArchiveField {
        field: FieldName,
    },
    ConvertField {
        /// The field's name after the plan (renames run before conversions).
        field: FieldName,
        conversion: Conversion,
    },
    /// Drop the field's indexes (by its old name) before it is renamed, converted or archived,
    /// or when its index set changes.
    DropIndexes {
        field: FieldName,
    },
    /// Create the indexes the new definition wants for the field.
    CreateIndexes {
        field: FieldName,
    },
    /// Drop a compound index the new definition no longer has (or whose columns change).
    DropCompoundIndex {
        index: CompoundIndex,
    },
    /// Create a compound index of the new definition.
    CreateCompoundIndex {
        index: CompoundIndex,
    },
    /// Write the field's default into every existing record.
    Backfill {
        field: FieldName,
        value: Value,
    },
    /// Give every existing record its number, in creation order.
    NumberRecords {
        field: FieldName,
    },
    /// Compute a formula or rollup for every existing record.
    Recompute {
        field: FieldName,
    },
    /// A change to labels, help, order, options or settings that needs no DDL.
    Metadata {
        field: Option<FieldName>,
        change: String,
    },
}

impl Step {
    /// A line for the change report a client sees.
    pub fn describe(&self) -> Value {
        let (action, field, detail): (&str, Option<&FieldName>, String) = match self {
            Step::CreateTable => ("create_table", None, "create the records table".into()),
            Step::AddField { field } => ("add_field", Some(field), "add the field".into()),
            Step::RestoreField { field, .. } => (
                "restore_field",
                Some(field),
                "restore the field with its archived values".into(),
            ),
            Step::RenameField { from, to } => (
                "rename_field",
                Some(to),
                format!("rename {from} to {to}, keeping every value"),
            ),
            Step::ArchiveField { field } => (
                "archive_field",
                Some(field),
                "remove the field; its values are archived and can be restored".into(),
            ),
            Step::ConvertField { field, conversion } => (
                "convert_field",
                Some(field),
                match conversion {
                    Conversion::IntegerToDecimal { scale } => {
                        format!("convert whole numbers to decimals with {scale} places")
                    }
                    Conversion::Rescale { from, to } => {
                        format!("change decimal places from {from} to {to}")
                    }
                    Conversion::DecimalToInteger { .. } => {
                        "convert decimals to whole numbers".into()
                    }
                    Conversion::DateToDatetime => "convert dates to midnight UTC".into(),
                    Conversion::SelectToMulti => "turn each choice into a one-item list".into(),
                    Conversion::Replace => "replace the (empty) storage".into(),
                },
            ),
            Step::DropIndexes { field } => ("drop_indexes", Some(field), "drop indexes".into()),
            Step::DropCompoundIndex { index } => (
                "drop_index",
                None,
                format!("drop the index on {}", index.spelling().join(", ")),
            ),
            Step::CreateCompoundIndex { index } => (
                "create_index",
                None,
                format!("create an index on {}", index.spelling().join(", ")),
            ),
            Step::CreateIndexes { field } => {
                ("create_indexes", Some(field), "create indexes".into())
            }
            Step::Backfill { field, value } => (
                "backfill",
                Some(field),
                format!("set {value} in existing records"),
            ),
            Step::NumberRecords { field } => (
                "number_records",
                Some(field),
                "number existing records in creation order".into(),
            ),
            Step::Recompute { field } => (
                "recompute",
                Some(field),
                "compute the value of every existing record".into(),
            ),
            Step::Metadata { field, change } => ("metadata", field.as_ref(), change.clone()),
        };
        let mut out = json!({"action": action, "detail": detail});
        if let Some(field) = field {
            out["field"] = json!(field);
        }
        out
    }

    pub fn is_metadata(&self) -> bool {
        matches!(self, Step::Metadata { .. })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub checks: Vec<Check>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn describe(&self) -> Vec<Value> {
        self.steps
            .iter()
            .filter(|s| !matches!(s, Step::DropIndexes { .. } | Step::CreateIndexes { .. }))
            .map(Step::describe)
            .collect()
    }
}

/// What the caller asked for beyond the new definition itself.
#[derive(Debug, Clone, Default)]
pub struct ChangeIntent {
    /// new name → old name
    pub renames: HashMap<FieldName, FieldName>,
    /// restored field name → where its data waits
    pub restores: HashMap<FieldName, Restore>,
}

/// Plans the change from `old` (None for a new entity) to `new`.
pub fn plan(old: Option<&EntityDef>, new: &EntityDef, intent: &ChangeIntent) -> Plan {
    let Some(old) = old else {
        // The table is created with every index, compound ones included.
        return Plan {
            checks: Vec::new(),
            steps: vec![Step::CreateTable],
        };
    };
    let mut plan = Plan::default();
    let mut drops = Vec::new();
    let mut archives = Vec::new();
    let mut renames = Vec::new();
    let mut conversions = Vec::new();
    let mut adds = Vec::new();
    let mut creates = Vec::new();
    let mut fills = Vec::new();
    let mut metadata = Vec::new();

    let old_name_of = |new_name: &FieldName| -> Option<FieldName> {
        intent
            .renames
            .get(new_name)
            .cloned()
            .or_else(|| old.field(new_name.as_str()).map(|f| f.name.clone()))
    };
    let survivors: HashMap<FieldName, FieldName> = new
        .fields
        .iter()
        .filter(|f| !intent.restores.contains_key(&f.name))
        .filter_map(|f| {
            let old_name = old_name_of(&f.name)?;
            old.field(old_name.as_str())?;
            Some((old_name, f.name.clone()))
        })
        .collect();

    for old_field in &old.fields {
        if !survivors.contains_key(&old_field.name) {
            drops.push(Step::DropIndexes {
                field: old_field.name.clone(),
            });
            archives.push(Step::ArchiveField {
                field: old_field.name.clone(),
            });
        }
    }

    for new_field in &new.fields {
        let name = &new_field.name;
        if let Some(restore) = intent.restores.get(name) {
            restore_checks(&mut plan.checks, new_field, &restore.storage);
            adds.push(Step::RestoreField {
                field: name.clone(),
                restore: restore.clone(),
            });
            creates.push(Step::CreateIndexes {
                field: name.clone(),
            });
            continue;
        }
        let Some((old_name, old_field)) =
            old_name_of(name).and_then(|o| old.field(o.as_str()).map(|f| (o.clone(), f)))
        else {
            add_field(&mut plan.checks, &mut fills, new_field);
            adds.push(Step::AddField {
                field: name.clone(),
            });
            creates.push(Step::CreateIndexes {
                field: name.clone(),
            });
            continue;
        };
        let storage = match old_field.column_type() {
            Some(_) => Storage::Column(Ident::column(&old_name)),
            None => Storage::Join(Ident::join_table(&old.name, &old_name)),
        };
        let renamed = old_name != *name;
        if renamed {
            renames.push(Step::RenameField {
                from: old_name.clone(),
                to: name.clone(),
            });
        }
        let conversion = kind_change(&mut plan.checks, old_field, new_field, &storage);
        if let Some(conversion) = conversion {
            conversions.push(Step::ConvertField {
                field: name.clone(),
                conversion,
            });
        }
        constraint_checks(&mut plan.checks, old_field, new_field, &storage);
        let index_changed = (old_field.has_unique_index(), old_field.has_plain_index())
            != (new_field.has_unique_index(), new_field.has_plain_index());
        if renamed || conversion.is_some() || index_changed {
            drops.push(Step::DropIndexes {
                field: old_name.clone(),
            });
            creates.push(Step::CreateIndexes {
                field: name.clone(),
            });
        }
        if conversion == Some(Conversion::Replace) && new_field.kind == Kind::Autonumber {
            fills.push(Step::NumberRecords {
                field: name.clone(),
            });
        }
        let computed_changed = old_field.kind != new_field.kind
            || old_field.formula != new_field.formula
            || old_field.rollup != new_field.rollup
            || old_field.column_type() != new_field.column_type();
        if matches!(new_field.kind, Kind::Formula | Kind::Rollup) && computed_changed {
            fills.push(Step::Recompute {
                field: name.clone(),
            });
        }
        if let Some(change) = metadata_change(old_field, new_field) {
            metadata.push(Step::Metadata {
                field: Some(name.clone()),
                change,
            });
        }
    }

    let old_order: Vec<&FieldName> = old
        .fields
        .iter()
        .filter_map(|f| survivors.get(&f.name))
        .collect();
    let new_order: Vec<&FieldName> = new
        .fields
        .iter()
        .filter(|f| survivors.values().any(|n| n == &f.name))
        .map(|f| &f.name)
        .collect();
    if old_order != new_order {
        metadata.push(Step::Metadata {
            field: None,
            change: "reorder fields".into(),
        });
    }
    if old.label != new.label || old.description != new.description {
        metadata.push(Step::Metadata {
            field: None,
            change: "relabel the entity".into(),
        });
    }
    let old_display = old
        .display_field
        .as_ref()
        .map(|d| survivors.get(d).unwrap_or(d));
    if old_display != new.display_field.as_ref() {
        metadata.push(Step::Metadata {
            field: None,
            change: "change the display field".into(),
        });
    }

    // Rollups first: formulas may read them.
    fills.sort_by_key(|step| match step {
        Step::Recompute { field } => match new.field(field.as_str()).map(|f| f.kind) {
            Some(Kind::Rollup) => 1,
            _ => 2,
        },
        _ => 0,
    });
    compound_indexes(old, new, &mut drops, &mut creates);
    plan.steps = [
        drops,
        archives,
        renames,
        conversions,
        adds,
        creates,
        fills,
        metadata,
    ]
    .concat();
    plan
}

/// Compound indexes that go or change are dropped before any column moves (SQLite cannot drop or
/// retype a column an index holds), and created after: those the new definition adds, and those
/// over a column that is renamed, converted or archived.
fn compound_indexes(
    old: &EntityDef,
    new: &EntityDef,
    drops: &mut Vec<Step>,
    creates: &mut Vec<Step>,
) {
    let moved: Vec<String> = drops
        .iter()
        .filter_map(|step| match step {
            Step::DropIndexes { field } => Some(field.as_str().to_owned()),
            _ => None,
        })
        .collect();
    let holds_moved = |index: &CompoundIndex| index.keys.iter().any(|k| moved.contains(&k.column));
    let mut rebuilt = Vec::new();
    for index in &old.indexes {
        if !new.indexes.contains(index) || holds_moved(index) {
            drops.push(Step::DropCompoundIndex {
                index: index.clone(),
            });
            rebuilt.push(index);
        }
    }
    for index in &new.indexes {
        if !old.indexes.contains(index) || rebuilt.contains(&index) {
            creates.push(Step::CreateCompoundIndex {
                index: index.clone(),
            });
        }
    }
}

fn add_field(checks: &mut Vec<Check>, fills: &mut Vec<Step>, field: &FieldDef) {
    let name = field.name.clone();
    if field.kind == Kind::Autonumber {
        fills.push(Step::NumberRecords { field: name });
        return;
    }
    if matches!(field.kind, Kind::Formula | Kind::Rollup) {
        fills.push(Step::Recompute { field: name });
        return;
    }
    match &field.default {
        Some(default) => {
            if field.has_unique_index() {
                checks.push(Check::NoRecords {
                    field: name.clone(),
                    reason: "is unique, so one default cannot fill existing records".into(),
                });
            }
            fills.push(Step::Backfill {
                field: name,
                value: default.clone(),
            });
        }
        None if field.required => checks.push(Check::NoRecords {
            field: name,
            reason: "is required and has no default to fill existing records with".into(),
        }),
        None => {}
    }
}

fn restore_checks(checks: &mut Vec<Check>, field: &FieldDef, storage: &Storage) {
    if field.required {
        checks.push(Check::NoEmpty {
            field: field.name.clone(),
            storage: storage.clone(),
        });
    }
    if let (true, Storage::Column(column), Some(ty)) =
        (field.has_unique_index(), storage, field.column_type())
    {
        checks.push(Check::NoDuplicates {
            field: field.name.clone(),
            column: column.clone(),
            ty,
        });
    }
}

/// The conversion a kind (or scale) change needs, adding the checks that make it safe.
fn kind_change(
    checks: &mut Vec<Check>,
    old: &FieldDef,
    new: &FieldDef,
    storage: &Storage,
) -> Option<Conversion> {
    let name = new.name.clone();
    let column = match storage {
        Storage::Column(c) => Some(c.clone()),
        Storage::Join(_) => None,
    };
    let needs_empty = |checks: &mut Vec<Check>, reason: String| {
        checks.push(Check::NoValues {
            field: name.clone(),
            storage: storage.clone(),
            reason,
        });
        Some(Conversion::Replace)
    };
    let (from, to) = (old.kind, new.kind);
    let textual_target = |k: Kind| matches!(k, Kind::Text | Kind::LongText);
    let validated_target =
        |k: Kind| matches!(k, Kind::Email | Kind::Phone | Kind::Url | Kind::Select);

    if from == to {
        return match from {
            k if k.is_decimal() && old.scale != new.scale => {
                if new.scale < old.scale {
                    checks.push(Check::FitsScale {
                        field: name.clone(),
                        column: column?,
                        from: old.scale,
                        to: new.scale,
                    });
                }
                Some(Conversion::Rescale {
                    from: old.scale,
                    to: new.scale,
                })
            }
            Kind::Lookup | Kind::MultiLookup if old.target != new.target => needs_empty(
                checks,
                format!(
                    "points at {} records; it cannot be pointed at another entity while it holds values",
                    old.target.as_ref().map(|t| t.as_str()).unwrap_or("other")
                ),
            ),
            Kind::Formula | Kind::Rollup if old.column_type() != new.column_type() => {
                Some(Conversion::Replace)
            }
            _ => None,
        };
    }
    if old.column_type() == new.column_type() && from.is_computed() && !to.is_computed() {
        // The computed values stay, now editable.
        return None;
    }
    if to.is_computed() {
        if from.is_computed() {
            return Some(Conversion::Replace);
        }
        return needs_empty(
            checks,
            format!(
                "holds values typed by users; a {} field computes its own",
                to.as_str()
            ),
        );
    }
    match (from, to) {
        (a, b) if a.is_textual() && !a.is_computed() && textual_target(b) => None,
        (a, b) if a.is_textual() && !a.is_computed() && validated_target(b) => {
            checks.push(Check::ValuesValid {
                field: name,
                column: column?,
                new: Box::new(new.clone()),
            });
            None
        }
        (Kind::Autonumber, b) if textual_target(b) => None,
        (Kind::Integer, b) if b.is_decimal() => {
            Some(Conversion::IntegerToDecimal { scale: new.scale })
        }
        (a, b) if a.is_decimal() && b.is_decimal() => {
            if old.scale == new.scale {
                return None;
            }
            if new.scale < old.scale {
                checks.push(Check::FitsScale {
                    field: name,
                    column: column?,
                    from: old.scale,
                    to: new.scale,
                });
            }
            Some(Conversion::Rescale {
                from: old.scale,
                to: new.scale,
            })
        }
        (a, Kind::Integer) if a.is_decimal() => {
            checks.push(Check::FitsScale {
                field: name,
                column: column?,
                from: old.scale,
                to: 0,
            });
            Some(Conversion::DecimalToInteger { scale: old.scale })
        }
        (Kind::Date, Kind::Datetime) => Some(Conversion::DateToDatetime),
        (Kind::Select, Kind::MultiSelect) => Some(Conversion::SelectToMulti),
        _ => needs_empty(
            checks,
            format!(
                "cannot be converted from {} to {} while it holds values",
                from.as_str(),
                to.as_str()
            ),
        ),
    }
}

fn effective_max_length(field: &FieldDef) -> Option<u64> {
    match field.kind {
        Kind::Text => Some(field.max_length.unwrap_or(TEXT_MAX)),
        Kind::LongText => Some(field.max_length.unwrap_or(LONG_TEXT_MAX)),
        Kind::Email | Kind::Phone | Kind::Url => field.max_length,
        _ => None,
    }
}

/// Checks for tightened constraints on a field that keeps its data.
fn constraint_checks(checks: &mut Vec<Check>, old: &FieldDef, new: &FieldDef, storage: &Storage) {
    let name = new.name.clone();
    if new.required && !old.required {
        checks.push(Check::NoEmpty {
            field: name.clone(),
            storage: storage.clone(),
        });
    }
    let Storage::Column(column) = storage else {
        return;
    };
    if new.has_unique_index()
        && !old.has_unique_index()
        && !new.is_computed()
        && let Some(ty) = old.column_type()
    {
        checks.push(Check::NoDuplicates {
            field: name.clone(),
            column: column.clone(),
            ty,
        });
    }
    if matches!(old.kind, Kind::Select | Kind::MultiSelect)
        && matches!(new.kind, Kind::Select | Kind::MultiSelect)
    {
        let removed: Vec<String> = old
            .options
            .iter()
            .filter(|o| !new.options.iter().any(|n| n.value == o.value))
            .map(|o| o.value.clone())
            .collect();
        if !removed.is_empty() {
            checks.push(Check::OptionsUnused {
                field: name.clone(),
                column: column.clone(),
                multi: old.kind == Kind::MultiSelect,
                options: removed,
            });
        }
    }
    if old.kind.is_textual() && new.kind.is_textual() && !new.is_computed() {
        if let Some(max) = effective_max_length(new)
            && effective_max_length(old).is_none_or(|m| m > max)
        {
            checks.push(Check::LengthAtMost {
                field: name.clone(),
                column: column.clone(),
                max,
            });
        }
        if let Some(min) = new.min_length
            && old.min_length.is_none_or(|m| m < min)
        {
            checks.push(Check::LengthAtLeast {
                field: name.clone(),
                column: column.clone(),
                min,
            });
        }
        let old_pattern = old.regex.as_ref().map(|r| r.as_str());
        let new_pattern = new.regex.as_ref().map(|r| r.as_str());
        if new_pattern.is_some() && new_pattern != old_pattern && old.kind == new.kind {
            checks.push(Check::ValuesValid {
                field: name.clone(),
                column: column.clone(),
                new: Box::new(new.clone()),
            });
        }
    }
    let numeric = |f: &FieldDef| f.kind == Kind::Integer || f.kind.is_decimal();
    if numeric(old) && numeric(new) {
        let tighter_min = new.minimum.filter(|m| old.minimum.is_none_or(|o| o < *m));
        let tighter_max = new.maximum.filter(|m| old.maximum.is_none_or(|o| o > *m));
        if (tighter_min.is_some() || tighter_max.is_some())
            && let Some(ty) = old.column_type()
        {
            checks.push(Check::Range {
                field: name,
                column: column.clone(),
                ty,
                min: tighter_min,
                max: tighter_max,
            });
        }
    }
}

/// Describes what changed in a field that needs no DDL.
fn metadata_change(old: &FieldDef, new: &FieldDef) -> Option<String> {
    let mut changed: Vec<&str> = old
        .schema
        .iter()
        .filter(|(k, v)| new.schema.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .chain(
            new.schema
                .keys()
                .filter(|k| !old.schema.contains_key(*k))
                .map(String::as_str),
        )
        .collect();
    changed.sort_unstable();
    changed.dedup();
    if old.required != new.required {
        changed.push("required");
    }
    (!changed.is_empty()).then(|| format!("change {}", changed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::definition::EntityDef;

    fn def(properties: Value, required: Value) -> EntityDef {
        EntityDef::parse(&json!({
            "name": "deal",
            "label": {"en": "Deal", "zh-CN": "交易"},
            "schema": {"type": "object", "properties": properties, "required": required}
        }))
        .unwrap()
    }

    fn actions(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| s.describe()["action"].as_str().unwrap().to_owned())
            .collect()
    }

    fn name(s: &str) -> FieldName {
        FieldName::parse(s).unwrap()
    }

    #[test]
    fn a_new_entity_creates_its_table() {
        let new = def(json!({"a": {"x-kind": "text"}}), json!([]));
        let p = plan(None, &new, &ChangeIntent::default());
        assert_eq!(actions(&p), ["create_table"]);
    }

    #[test]
    fn adding_a_required_field_without_default_checks_for_records() {
        let old = def(json!({"a": {"x-kind": "text"}}), json!([]));
        let new = def(
            json!({"a": {"x-kind": "text"}, "b": {"x-kind": "integer"}}),
            json!(["b"]),
        );
        let p = plan(Some(&old), &new, &ChangeIntent::default());
        assert!(matches!(p.checks[..], [Check::NoRecords { .. }]));
        assert_eq!(actions(&p), ["add_field", "create_indexes"]);
        let with_default = def(
            json!({"a": {"x-kind": "text"}, "b": {"x-kind": "integer", "default": 7}}),
            json!(["b"]),
        );
        let p = plan(Some(&old), &with_default, &ChangeIntent::default());
        assert!(p.checks.is_empty());
        assert_eq!(actions(&p), ["add_field", "create_indexes", "backfill"]);
    }

    #[test]
    fn relabel_and_reorder_need_no_ddl() {
        let old = def(
            json!({"a": {"x-kind": "text"}, "b": {"x-kind": "integer"}}),
            json!([]),
        );
        let new = def(
            json!({"b": {"x-kind": "integer"}, "a": {"x-kind": "text", "x-label": {"en": "A"}}}),
            json!([]),
        );
        let p = plan(Some(&old), &new, &ChangeIntent::default());
        assert!(p.steps.iter().all(Step::is_metadata), "{:?}", p.steps);
        assert_eq!(p.steps.len(), 2);
    }

    #[test]
    fn renames_keep_data_and_move_indexes() {
        let old = def(
            json!({"a": {"x-kind": "text", "x-unique": true}}),
            json!([]),
        );
        let new = def(
            json!({"b": {"x-kind": "text", "x-unique": true}}),
            json!([]),
        );
        let mut intent = ChangeIntent::default();
        intent.renames.insert(name("b"), name("a"));
        let p = plan(Some(&old), &new, &intent);
        assert_eq!(
            actions(&p),
            ["drop_indexes", "rename_field", "create_indexes"]
        );
        assert!(p.checks.is_empty());
        // Without the rename intent the same change archives a and adds b.
        let p = plan(Some(&old), &new, &ChangeIntent::default());
        assert_eq!(
            actions(&p),
            // b becomes the display field in place of a.
            [
                "drop_indexes",
                "archive_field",
                "add_field",
                "create_indexes",
                "metadata"
            ]
        );
    }

    #[test]
    fn tightening_constraints_checks_the_data() {
        let old = def(
            json!({
                "t": {"x-kind": "long_text"},
                "s": {"x-kind": "select", "x-options": [{"value": "a"}, {"value": "b"}]},
                "n": {"x-kind": "decimal", "x-scale": 4},
                "e": {"x-kind": "text"}
            }),
            json!([]),
        );
        let new = def(
            json!({
                "t": {"x-kind": "text", "x-unique": true},
                "s": {"x-kind": "select", "x-options": [{"value": "a"}]},
                "n": {"x-kind": "integer"},
                "e": {"x-kind": "email"}
            }),
            json!(["t"]),
        );
        let p = plan(Some(&old), &new, &ChangeIntent::default());
        let kinds: Vec<&str> = p
            .checks
            .iter()
            .map(|c| match c {
                Check::NoEmpty { .. } => "empty",
                Check::NoDuplicates { .. } => "dupes",
                Check::OptionsUnused { .. } => "options",
                Check::LengthAtMost { .. } => "length",
                Check::FitsScale { .. } => "scale",
                Check::ValuesValid { .. } => "valid",
                _ => "other",
            })
            .collect();
        for expected in ["empty", "dupes", "options", "length", "scale", "valid"] {
            assert!(
                kinds.contains(&expected),
                "{expected} missing from {kinds:?}"
            );
        }
    }

    #[test]
    fn safe_widening_needs_no_check() {
        let old = def(
            json!({"n": {"x-kind": "integer"}, "t": {"x-kind": "text"}}),
            json!([]),
        );
        let new = def(
            json!({"n": {"x-kind": "money", "x-scale": 2}, "t": {"x-kind": "long_text"}}),
            json!([]),
        );
        let p = plan(Some(&old), &new, &ChangeIntent::default());
        assert!(p.checks.is_empty(), "{:?}", p.checks);
        assert!(p.steps.iter().any(|s| matches!(
            s,
            Step::ConvertField {
                conversion: Conversion::IntegerToDecimal { scale: 2 },
                ..
            }
        )));
    }

    #[test]
    fn incompatible_kinds_need_an_empty_field() {
        let old = def(json!({"n": {"x-kind": "integer"}}), json!([]));
        let new = def(json!({"n": {"x-kind": "date"}}), json!([]));
        let p = plan(Some(&old), &new, &ChangeIntent::default());
        assert!(matches!(p.checks[..], [Check::NoValues { .. }]));
    }
}
