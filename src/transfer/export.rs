//! Exports: any list (a saved view, or a filter and sort) as CSV or XLSX, streamed page by page
//! through the one read query, so the caller's read scope and hidden fields apply and memory
//! stays bounded however many records match.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::cells::neutralise;
use std::io::Write;

use super::xlsx::{Chunks, SheetWriter};
use super::{Locale, field_label, system_label};
use crate::auth::{Access, Action, Special};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::fields::{Kind, TextFormat};
use crate::records::list::ReadQuery;
use crate::records::service::{Target, target};
use crate::schema::compiled::CompiledEntity;
use crate::settings::Settings;

/// Records read per page (and per chunk of the response).
const PAGE: i64 = 1000;

/// The file an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn parse(text: &str) -> Result<Format> {
        match text {
            "csv" | "" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            other => Err(Error::bad_parameter(
                "format",
                format!("must be csv or xlsx, not '{other}'"),
            )),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// The query parameters of `GET /api/records/{entity}/export`.
#[derive(Debug, Clone)]
pub struct ExportParams {
    pub format: Format,
    pub view: Option<String>,
    pub filter: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
    pub fields: Option<String>,
    /// Headers as labels in the caller's language (`true`) or as field names.
    pub labels: bool,
}

impl Default for ExportParams {
    fn default() -> Self {
        ExportParams {
            format: Format::Csv,
            view: None,
            filter: None,
            q: None,
            sort: None,
            fields: None,
            labels: true,
        }
    }
}

impl ExportParams {
    pub const NAMES: &'static [&'static str] =
        &["format", "view", "filter", "q", "sort", "fields", "headers"];

    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ExportParams> {
        let mut params = ExportParams::default();
        for (name, value) in pairs {
            let value = value.clone();
            match name.as_str() {
                "format" => params.format = Format::parse(&value)?,
                "view" => params.view = Some(value),
                "filter" => params.filter = Some(value),
                "q" => params.q = Some(value),
                "sort" => params.sort = Some(value),
                "fields" => params.fields = Some(value),
                "headers" => {
                    params.labels = match value.as_str() {
                        "labels" | "" => true,
                        "names" => false,
                        other => {
                            return Err(Error::bad_parameter(
                                "headers",
                                format!("must be labels or names, not '{other}'"),
                            ));
                        }
                    }
                }
                other => {
                    return Err(Error::bad_parameter(
                        other,
                        format!("is not a parameter here (use {})", Self::NAMES.join(", ")),
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// System columns an export may carry besides the fields.
const SYSTEM_COLUMNS: &[&str] = &[
    "id",
    "owner",
    "department",
    "created_at",
    "updated_at",
    "created_by",
    "version",
    "tags",
];

/// A running export: what it is, and its bytes as they are produced.
pub struct Export {
    pub format: Format,
    pub filename: String,
    /// Chunks of the file; an `Err` ends it early (the database failed mid-way).
    pub chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
}

/// What the reader hands the writer: a page of records with the titles its lookups show, then
/// the end. Without the end (the reading failed), the file is left unfinished.
enum WrittenPage {
    Page(Vec<Value>, HashMap<String, String>),
    End,
}

/// Everything an export settled before its first byte: a bad filter, sort or column is a 400
/// then, not a broken file later.
struct Plan {
    target: Target,
    access: Access,
    params: ExportParams,
    filter: Option<String>,
    sort: Option<String>,
    columns: Vec<String>,
    /// The columns as the read query's `fields`.
    fields: String,
    locale: Locale,
    /// Names of users and departments by id.
    people: HashMap<String, String>,
}

/// Starts an export; the file streams from the returned receiver.
pub async fn start(
    ctx: Arc<Context>,
    access: &Access,
    entity: &str,
    params: ExportParams,
) -> Result<Export> {
    let target = target(&ctx, access, entity).await?;
    let name = target.entity.def.name.to_string();
    access.require_action(&name, Action::Read)?;
    access.require(Special::Export)?;
    let (mut filter, mut sort, mut view_columns) = (None, None, None);
    if let Some(id) = params.view.as_deref().filter(|v| !v.is_empty()) {
        let shown = crate::layouts::views::get(&ctx, access, id).await?;
        let view = Value::Object(shown.document);
        if view["entity"].as_str() != Some(name.as_str()) {
            return Err(Error::bad_parameter(
                "view",
                format!("is a view of {}, not of {name}", view["entity"]),
            ));
        }
        filter = view["filter"].as_str().map(str::to_owned);
        sort = view["sort"].as_str().map(str::to_owned);
        view_columns = view["columns"].as_array().map(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
    }
    let filter = match (filter.filter(|f| !f.trim().is_empty()), &params.filter) {
        (Some(a), Some(b)) if !b.trim().is_empty() => Some(format!("({a}) && ({b})")),
        (a, b) => a.or(b.clone()),
    };
    let sort = params.sort.clone().or(sort);
    let columns = columns(
        &target.entity,
        access,
        params.fields.as_deref(),
        view_columns,
    )?;
    let settings = Settings::load(&mut &ctx.db).await?;
    let locale = Locale::of(access, settings.time_zone());
    let mut people: HashMap<String, String> = HashMap::new();
    let wants = |kind: Kind, system: &[&str]| {
        columns.iter().any(|c| {
            system.contains(&c.as_str())
                || target.entity.def.field(c).is_some_and(|f| f.kind == kind)
        })
    };
    if wants(Kind::User, &["owner", "created_by"]) {
        for user in crate::store::auth::users(&mut &ctx.db).await? {
            people.insert(user.id, user.display_name);
        }
    }
    if wants(Kind::Department, &["department"]) {
        for d in crate::store::auth::departments(&mut &ctx.db).await? {
            people.insert(d.id, d.name);
        }
    }
    let plan = Plan {
        target,
        access: access.clone(),
        params,
        filter,
        sort,
        fields: columns.join(","),
        columns,
        locale,
        people,
    };
    // The first page is read before answering, so a bad filter or sort is a 400.
    let first = plan.query(None).page(&mut &ctx.db).await?;
    let (sender, chunks) = mpsc::channel(4);
    let format = plan.params.format;
    let filename = format!(
        "{name}-{}.{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        format.extension()
    );
    tokio::spawn(async move {
        let errors = sender.clone();
        if let Err(error) = Arc::new(plan).run(&ctx, first, sender).await {
            tracing::warn!(%error, "an export stopped early");
            let _ = errors
                .send(Err(std::io::Error::other(error.public_message())))
                .await;
        }
    });
    Ok(Export {
        format,
        filename,
        chunks,
    })
}

/// The columns of an export: `fields`, else the view's, else every readable field.
fn columns(
    entity: &CompiledEntity,
    access: &Access,
    fields: Option<&str>,
    view: Option<Vec<String>>,
) -> Result<Vec<String>> {
    let name = entity.def.name.as_str();
    let readable = |f: &str| entity.def.field(f).is_some() && access.can_read_field(name, f);
    if let Some(spec) = fields.filter(|s| !s.trim().is_empty()) {
        let mut out = Vec::new();
        for column in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !(readable(column) || SYSTEM_COLUMNS.contains(&column)) {
                return Err(Error::bad_parameter(
                    "fields",
                    format!("{name} has no field '{column}'"),
                ));
            }
            if !out.iter().any(|c| c == column) {
                out.push(column.to_owned());
            }
        }
        return Ok(out);
    }
    if let Some(view) = view.filter(|v| !v.is_empty()) {
        // A shared view may show fields this caller cannot read: they are left out.
        return Ok(view
            .into_iter()
            .filter(|c| readable(c) || SYSTEM_COLUMNS.contains(&c.as_str()))
            .collect());
    }
    Ok(entity
        .def
        .fields
        .iter()
        .filter(|f| readable(f.name.as_str()))
        .map(|f| f.name.to_string())
        .collect())
}

impl Plan {
    fn query<'a>(&'a self, cursor: Option<&'a str>) -> ReadQuery<'a> {
        ReadQuery {
            // Only the exported columns are read and turned into JSON (no tags unless asked).
            fields: Some(&self.fields),
            filter: self.filter.as_deref(),
            q: self.params.q.as_deref(),
            sort: self.sort.as_deref(),
            cursor,
            limit: PAGE,
            ..ReadQuery::new(&self.target, &self.access)
        }
    }

    fn headers(&self) -> Vec<String> {
        let entity = &self.target.entity;
        self.columns
            .iter()
            .map(|c| match (self.params.labels, entity.def.field(c)) {
                (false, _) => c.clone(),
                (true, Some(field)) => field_label(field, self.locale.lang),
                (true, None) => system_label(c, self.locale.lang).to_owned(),
            })
            .collect()
    }

    /// Writes the file. Reading pages (the database, then the records' JSON) and writing them
    /// (each cell's text, then CSV or XLSX) run side by side: the pages are read here while a
    /// blocking thread writes the page before (decision 025).
    async fn run(
        self: Arc<Self>,
        ctx: &Context,
        first: crate::records::list::Page,
        sender: mpsc::Sender<std::io::Result<Vec<u8>>>,
    ) -> Result<()> {
        let (pages, mut to_write) = mpsc::channel::<WrittenPage>(2);
        let plan = self.clone();
        let writer = tokio::task::spawn_blocking(move || plan.write(&mut to_write, &sender));
        let read = self.read_pages(ctx, first, &pages).await;
        drop(pages);
        let written = writer
            .await
            .map_err(|e| Error::internal(format!("the export's writer stopped: {e}")))?;
        read.and(written)
    }

    /// Reads page after page and hands each to the writer, until the last or until the writer
    /// has gone (the client went away).
    async fn read_pages(
        &self,
        ctx: &Context,
        first: crate::records::list::Page,
        pages: &mpsc::Sender<WrittenPage>,
    ) -> Result<()> {
        let mut page = first;
        loop {
            let titles = self.titles(ctx, &page.items).await?;
            let next = page.next_cursor.take();
            if pages
                .send(WrittenPage::Page(page.items, titles))
                .await
                .is_err()
            {
                return Ok(());
            }
            let Some(cursor) = next else {
                let _ = pages.send(WrittenPage::End).await;
                return Ok(());
            };
            page = self.query(Some(&cursor)).page(&mut &ctx.db).await?;
        }
    }

    /// The writer's side (a blocking thread): each page's rows into the file, a chunk per page.
    fn write(
        &self,
        pages: &mut mpsc::Receiver<WrittenPage>,
        sender: &mpsc::Sender<std::io::Result<Vec<u8>>>,
    ) -> Result<()> {
        let mut sink = Sink::new(self.params.format, &self.target.entity)?;
        sink.row(&self.headers(), true)?;
        loop {
            match pages.blocking_recv() {
                Some(WrittenPage::Page(items, titles)) => {
                    for record in &items {
                        sink.row(&self.cells(record, &titles), false)?;
                    }
                    if sender.blocking_send(Ok(sink.take())).is_err() {
                        // The client went away: nothing more to write.
                        return Ok(());
                    }
                }
                Some(WrittenPage::End) => break,
                // Closed without the end: the reader failed, and says so.
                None => return Ok(()),
            }
        }
        let _ = sender.blocking_send(Ok(sink.finish()?));
        Ok(())
    }

    /// Titles of the records that this page's lookups point at, through the read query of
    /// each target (a related record outside the caller's scope shows its id).
    async fn titles(&self, ctx: &Context, items: &[Value]) -> Result<HashMap<String, String>> {
        let entity = &self.target.entity;
        let mut out = HashMap::new();
        for column in &self.columns {
            let Some(field) = entity.def.field(column) else {
                continue;
            };
            let (Kind::Lookup | Kind::MultiLookup, Some(target_name)) = (field.kind, &field.target)
            else {
                continue;
            };
            let Ok(related) = self.target.catalog.entity(target_name.as_str()) else {
                continue;
            };
            if self
                .access
                .require_action(related.def.name.as_str(), Action::Read)
                .is_err()
            {
                continue;
            }
            let ids: Vec<String> = items
                .iter()
                .flat_map(|r| match &r[column.as_str()] {
                    Value::String(id) => vec![id.clone()],
                    Value::Array(ids) => ids
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                })
                .filter(|id| !out.contains_key(id) && uuid::Uuid::parse_str(id).is_ok())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let Some(title_field) = related.def.title_field().map(|f| f.name.to_string()) else {
                continue;
            };
            let related_target = Target {
                catalog: self.target.catalog.clone(),
                entity: related.clone(),
            };
            for chunk in ids.chunks(200) {
                let list: Vec<String> = chunk.iter().map(|id| format!("\"{id}\"")).collect();
                let filter = format!("id in [{}]", list.join(", "));
                let query = ReadQuery {
                    filter: Some(&filter),
                    limit: chunk.len() as i64,
                    ..ReadQuery::new(&related_target, &self.access)
                };
                for record in query.page(&mut &ctx.db).await?.items {
                    if let (Some(id), Some(title)) =
                        (record["id"].as_str(), record[title_field.as_str()].as_str())
                    {
                        out.insert(id.to_owned(), title.to_owned());
                    }
                }
            }
        }
        Ok(out)
    }

    fn cells(&self, record: &Value, titles: &HashMap<String, String>) -> Vec<String> {
        let entity = &self.target.entity;
        let lookups = TextFormat {
            lang: self.locale.lang,
            places: None,
            offset_minutes: self.locale.offset_minutes,
            titles: Some(titles),
        };
        let people = TextFormat {
            titles: Some(&self.people),
            ..lookups.clone()
        };
        self.columns
            .iter()
            .map(|column| {
                let value = &record[column.as_str()];
                let text = match entity.def.field(column) {
                    Some(field) => {
                        let format = match field.kind {
                            Kind::User | Kind::Department => &people,
                            _ => &lookups,
                        };
                        field.kind.field_type().to_text(field, value, format)
                    }
                    None => system_text(column, value, &people),
                };
                neutralise(&text).into_owned()
            })
            .collect()
    }
}

/// The text of a system column.
fn system_text(column: &str, value: &Value, format: &TextFormat) -> String {
    match (column, value) {
        (_, Value::Null) => String::new(),
        ("owner" | "created_by" | "department", Value::String(id)) => format
            .titles
            .and_then(|t| t.get(id))
            .cloned()
            .unwrap_or_else(|| id.clone()),
        ("created_at" | "updated_at", Value::String(at)) => crate::store::value::parse_datetime(at)
            .map_or_else(
                || at.clone(),
                |t| crate::fields::text_form::format_datetime(&t, format.offset_minutes),
            ),
        ("tags", Value::Array(tags)) => {
            let names: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
            crate::fields::text_form::format_multi(&names, format.lang)
        }
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// Where rows go: a CSV buffer or a streaming workbook.
enum Sink {
    Csv(Box<csv::Writer<Chunks>>, Chunks),
    Xlsx(Box<SheetWriter>),
}

fn io_error(error: impl std::fmt::Display) -> Error {
    Error::internal(format!("writing an export: {error}"))
}

impl Sink {
    fn new(format: Format, entity: &CompiledEntity) -> Result<Sink> {
        Ok(match format {
            Format::Csv => {
                let mut out = Chunks::default();
                // A byte order mark, so Excel reads the file as UTF-8 (Chinese included).
                out.write_all("\u{FEFF}".as_bytes()).map_err(io_error)?;
                Sink::Csv(Box::new(csv::Writer::from_writer(out.clone())), out)
            }
            Format::Xlsx => Sink::Xlsx(Box::new(
                SheetWriter::start(entity.def.name.as_str()).map_err(io_error)?,
            )),
        })
    }

    fn row(&mut self, cells: &[String], header: bool) -> Result<()> {
        match self {
            Sink::Csv(writer, _) => writer.write_record(cells).map_err(io_error),
            Sink::Xlsx(writer) => writer.row(cells, header).map_err(io_error),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Sink::Csv(writer, out) => {
                let _ = writer.flush();
                out.take()
            }
            Sink::Xlsx(writer) => writer.take(),
        }
    }

    fn finish(self) -> Result<Vec<u8>> {
        match self {
            Sink::Csv(mut writer, out) => {
                writer.flush().map_err(io_error)?;
                Ok(out.take())
            }
            Sink::Xlsx(writer) => writer.finish().map_err(io_error),
        }
    }
}
