//! The report query document as clients send it (`POST /api/reports/query`), read strictly:
//! an unknown key is a mistake worth reporting, not something to ignore.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// `group` (the default), or a built-in analysis: `funnel`.
    #[serde(default)]
    pub kind: Option<String>,
    pub entity: String,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub range: Option<RangeSpec>,
    #[serde(default)]
    pub group_by: Vec<GroupBySpec>,
    #[serde(default)]
    pub measures: Vec<MeasureSpec>,
    /// A measure key or a group-by field, `-` in front for descending.
    #[serde(default)]
    pub sort: Option<String>,
    /// Keep this many values of the first group-by; the rest become one "other" row.
    #[serde(default)]
    pub limit: Option<usize>,
    /// `previous_period`.
    #[serde(default)]
    pub compare: Option<String>,
    /// Running totals of counts and sums along the first group-by.
    #[serde(default)]
    pub cumulative: bool,
    /// Whether empty date buckets inside the range are shown (default true).
    #[serde(default)]
    pub fill_gaps: Option<bool>,
    /// Funnel: the stage field (a select).
    #[serde(default)]
    pub stage: Option<String>,
    /// Funnel: the stages in order (default: every option of the field, in option order).
    #[serde(default)]
    pub stages: Option<Vec<String>>,
    /// Funnel: the amount summed per stage.
    #[serde(default)]
    pub amount: Option<String>,
    /// Win rate: the stage values that count as won (default `["won"]`).
    #[serde(default)]
    pub won: Option<Vec<String>>,
    /// Win rate: the stage values that count as lost (default `["lost"]`).
    #[serde(default)]
    pub lost: Option<Vec<String>>,
    /// Duration: the date or datetime it starts at.
    #[serde(default)]
    pub from_field: Option<String>,
    /// Duration: the date or datetime it ends at.
    #[serde(default)]
    pub to_field: Option<String>,
    /// Duration: `days` (default for dates), `hours` (default for datetimes) or `minutes`.
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    pub field: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub relative: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBySpec {
    pub field: String,
    #[serde(default)]
    pub bucket: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    #[serde(rename = "fn")]
    pub func: String,
    #[serde(default)]
    pub field: Option<String>,
}

impl MeasureSpec {
    /// `count`, `sum_amount`, `count_distinct_customer` …
    pub fn key(&self) -> String {
        match &self.field {
            Some(f) if self.func != "count" => format!("{}_{f}", self.func),
            _ => self.func.clone(),
        }
    }
}

impl ReportSpec {
    pub fn parse(body: &Value) -> Result<ReportSpec> {
        serde_json::from_value(body.clone())
            .map_err(|e| Error::bad_request(format!("not a report query: {e}")))
    }
}
