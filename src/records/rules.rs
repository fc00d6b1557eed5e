//! The rules a record write must pass before it is written: where the record is placed (owner
//! and department within the caller's scope), what it points at (live records the caller may
//! read), and which unique values it takes. Called by the write path alone.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::input::Input;
use crate::auth::{Access, Action, Department};
use crate::error::{Error, FieldError, Result};
use crate::fields::{ResultKind, RollupOp};
use crate::schema::compiled::CompiledEntity;
use crate::store::records;
use crate::store::{Executor, Ident, Row, SqlValue, Tx, auth, tags};

/// Every referenced id must be a live record of its entity that the caller may read (a record
/// out of reach is as good as missing).
pub(crate) async fn check_references(tx: &mut Tx, input: &Input, access: &Access) -> Result<()> {
    let mut problems = Vec::new();
    for reference in &input.references {
        let scope = access.records(reference.target.as_str(), Action::Read);
        let found = records::existing_ids(tx, &reference.target, &reference.ids, &scope).await?;
        let missing: Vec<&str> = reference
            .ids
            .iter()
            .filter(|id| !found.contains(id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            problems.push(FieldError::new(
                reference.field.clone(),
                format!(
                    "there is no {} record {}",
                    reference.target,
                    missing.join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    Err(Error::invalid(
        format!("{} points at records that do not exist", fields.join(", ")),
        problems,
    ))
}

/// A unique value already taken is a 409 naming the field, and the record that holds it when
/// the caller may read that record.
pub(crate) async fn check_unique(
    tx: &mut Tx,
    entity: &CompiledEntity,
    values: &[(String, Ident, SqlValue)],
    id: &str,
    access: &Access,
) -> Result<()> {
    for (field, column, value) in values {
        let Some(holder) =
            records::holder_of(tx, &entity.layout, column, value.clone(), id).await?
        else {
            continue;
        };
        let readable = access.records(entity.def.name.as_str(), Action::Read);
        let visible = records::get_in(tx, &entity.layout, &holder, false, &readable)
            .await?
            .is_some();
        let (message, examples) = if visible {
            (
                format!("{field} must be unique; record {holder} already has this value"),
                vec![json!({"id": holder})],
            )
        } else {
            (
                format!("{field} must be unique; another record already has this value"),
                Vec::new(),
            )
        };
        return Err(Error::conflict(
            message.clone(),
            vec![FieldError::new(field.clone(), message).with_examples(examples)],
        ));
    }
    Ok(())
}

/// Unique fields of a stored row that hold a value (checked again when it comes back from the
/// trash).
pub(crate) fn unique_values(entity: &CompiledEntity, row: &Row) -> Vec<(String, Ident, SqlValue)> {
    entity
        .layout
        .full
        .fields
        .iter()
        .filter_map(|(name, index)| {
            let field = entity.def.field(name.as_str())?;
            let value = row.get(*index)?;
            (field.has_unique_index() && !value.is_null())
                .then(|| (name.to_string(), Ident::column(name), value.clone()))
        })
        .collect()
}

/// What a new record's rollups start at: nothing points at it yet.
pub(crate) fn initial_rollups(entity: &CompiledEntity) -> Vec<(Ident, SqlValue)> {
    entity
        .def
        .fields
        .iter()
        .filter_map(|f| {
            let spec = f.rollup.as_ref()?;
            let ty = f.column_type()?;
            let value = match (spec.op, f.result) {
                (RollupOp::Count | RollupOp::Sum, Some(ResultKind::Integer)) => {
                    SqlValue::Integer(0)
                }
                (RollupOp::Sum, Some(ResultKind::Decimal)) => {
                    SqlValue::Decimal(rust_decimal::Decimal::ZERO, f.scale)
                }
                _ => SqlValue::Null(ty),
            };
            Some((Ident::column(&f.name), value))
        })
        .collect()
}

pub(crate) async fn write_tags(
    tx: &mut Tx,
    entity: &CompiledEntity,
    id: &str,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    tags::ensure(tx, names, now).await?;
    tags::set(tx, entity.def.name.as_str(), id, names).await
}

/// A department id with its path in the tree, if the department exists.
async fn department(ex: &mut impl Executor, id: &str) -> Result<Option<Department>> {
    Ok(auth::department_by_id(ex, id).await?.map(|d| Department {
        id: d.id,
        path: d.path,
    }))
}

/// Settles a record's owner and department and checks the caller may place it there:
/// `requested` owner and department (each `None` when not given), and the current ones for a
/// reassignment. The department follows the owner unless it is given. A placement outside the
/// caller's scope for the action is a 422 naming the field.
pub(crate) async fn placement(
    ex: &mut impl Executor,
    access: &Access,
    entity: &str,
    action: Action,
    requested: (Option<&SqlValue>, Option<&SqlValue>),
    current: (Option<String>, Option<String>),
) -> Result<(Option<String>, Option<String>)> {
    let text = |v: Option<&SqlValue>| v.map(|v| v.as_str().map(str::to_owned));
    let (asked_owner, asked_department) = (text(requested.0), text(requested.1));
    let creating = action == Action::Create;
    let owner = match (&asked_owner, creating) {
        (Some(owner), _) => owner.clone(),
        (None, true) => access.actor_id().map(str::to_owned),
        (None, false) => current.0.clone(),
    };
    let mut problems = Vec::new();
    let me = access.actor_id();
    // The owner's user (not needed when it is the caller, whose department is known).
    let owner_row = match &owner {
        Some(id) if Some(id.as_str()) != me => {
            let user = auth::user_by_id(ex, id).await?;
            if asked_owner.is_some() && user.as_ref().is_none_or(|u| !u.active) {
                problems.push(FieldError::new(
                    "owner",
                    format!("there is no active user '{id}'"),
                ));
            }
            user
        }
        _ => None,
    };
    let my_department = access
        .actor()
        .and_then(|a| a.department.as_ref().map(|d| d.id.clone()));
    let owners_department = match (&owner_row, &owner) {
        (Some(user), _) => user.department_id.clone(),
        (None, Some(_)) => my_department.clone(),
        (None, None) => None,
    };
    let department_id = match (&asked_department, &asked_owner) {
        (Some(department), _) => department.clone(),
        // A new owner brings their department along; so does a new record.
        (None, Some(_)) => owners_department.clone(),
        (None, None) if creating => my_department.clone(),
        (None, None) => current.1.clone(),
    };
    let department = match &department_id {
        Some(id) => {
            let found = self::department(ex, id).await?;
            if found.is_none() {
                problems.push(FieldError::new(
                    "department",
                    format!("there is no department '{id}'"),
                ));
            }
            found
        }
        None => None,
    };
    let owner_department = match &owners_department {
        Some(d) => self::department(ex, d).await?,
        None => None,
    };
    let placed = access.may_place(
        entity,
        action,
        owner.as_deref(),
        owner_department.as_ref(),
        department.as_ref(),
    );
    if problems.is_empty() && !placed {
        let field = if asked_department.is_some() && asked_owner.is_none() {
            "department"
        } else {
            "owner"
        };
        problems.push(FieldError::new(
            field,
            "places the record outside the records you may work with",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::invalid(
            "the record cannot be placed there",
            problems,
        ));
    }
    Ok((owner, department_id))
}
