//! Dashboards a template brings (`dashboards.json`: a list of dashboard documents), installed
//! shared and upgraded like every other item: what you changed stays.

use chrono::Utc;
use serde_json::Value;

use super::install::{Pass, Step};
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::reports::dashboards::check;
use crate::store::Tx;
use crate::store::dashboards::{self as store, DashboardRow};

pub(super) async fn apply(tx: &mut Tx, access: &Access, pass: &mut Pass<'_>) -> Result<()> {
    for body in pass.package.list("dashboards.json")? {
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        let mut document = check(&body)
            .map_err(|e| Error::bad_request(format!("template dashboard {name}: {e}")))?;
        document.remove("shared");
        let document = Value::Object(document);
        let current = store::by_name(tx, None, &name).await?;
        let step = pass.step(
            "dashboard",
            &name,
            current.as_ref().map(|c| &c.document),
            &document,
        );
        let expected = match (&step, &current) {
            (Step::Create, _) => None,
            (Step::Update, Some(c)) => Some(c.version),
            _ => continue,
        };
        let now = Utc::now();
        let row = DashboardRow {
            id: current
                .as_ref()
                .map_or_else(|| uuid::Uuid::now_v7().to_string(), |c| c.id.clone()),
            name: name.clone(),
            owner: None,
            document: document.clone(),
            version: current.as_ref().map_or(1, |c| c.version + 1),
            created_by: access.actor_id().map(str::to_owned),
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        store::save(tx, &row, expected, access.actor_id()).await?;
        pass.done(&step, "dashboard", name, row.id.clone(), &document);
    }
    Ok(())
}
