//! The Rhai engine, built once and shared: sandbox limits (operations, call depth, expression
//! depth, string, array and map sizes, a wall-clock deadline), no modules, no `eval`, no file,
//! process or network access. A run executes on its own thread; the functions it calls that
//! need the database (`records::*`, `mail::send`) ask the async side through a channel and
//! wait for the answer, so the run's transaction stays on the async side.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use rhai::module_resolvers::DummyModuleResolver;
use rhai::{
    AST, Dynamic, Engine, EvalAltResult, FuncRegistration, ImmutableString, Map, Module,
    NativeCallContext, OptimizationLevel, Position, Scope,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::dates;
use crate::mail::render::{decimal_of, format_date, format_money};
use crate::mail::service::MailRequest;
use crate::settings::Settings;

/// The sandbox's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub timeout: Duration,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string: usize,
    pub max_array: usize,
    pub max_map: usize,
    /// Most records one `records::find` returns.
    pub max_found: i64,
    /// Most log lines kept per run.
    pub max_log_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 200_000_000,
            timeout: Duration::from_secs(5),
            max_call_levels: 48,
            max_expr_depth: 64,
            max_string: 1 << 20,
            max_array: 100_000,
            max_map: 10_000,
            max_found: 500,
            max_log_lines: 500,
        }
    }
}

/// Stack of a script thread: deep (but limited) recursion must hit the call-depth limit,
/// never the end of the stack.
const SCRIPT_STACK: usize = 32 * 1024 * 1024;

/// What a script asks of the host.
#[derive(Debug, Clone)]
pub enum Call {
    /// Active users with a role: `users::with_role(name)`.
    UsersWithRole {
        role: String,
    },
    Find {
        entity: String,
        filter: String,
        sort: Option<String>,
        limit: i64,
    },
    /// The records a saved view shows, by id, after `after`: `records::in_view(view)`.
    InView {
        view: String,
        after: Option<String>,
    },
    Count {
        entity: String,
        filter: String,
    },
    Get {
        entity: String,
        id: String,
    },
    Create {
        entity: String,
        data: Value,
    },
    Update {
        entity: String,
        id: String,
        data: Value,
    },
    Delete {
        entity: String,
        id: String,
    },
    Mail(MailRequest),
}

impl Call {
    /// Whether the call changes records (and so needs the run's transaction).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Call::Create { .. } | Call::Update { .. } | Call::Delete { .. }
        )
    }
}

/// A call with the channel its answer goes back on.
#[derive(Debug)]
pub struct HostCall {
    pub call: Call,
    pub reply: oneshot::Sender<Result<Value, String>>,
}

/// What a run starts with.
pub struct RunSetup {
    /// Variables the script sees (`record`, `old`, `changes`, `input`, …).
    pub vars: Vec<(String, Value)>,
    /// The run's clock: `today()` and `now()` read it.
    pub now: DateTime<Utc>,
    pub settings: Settings,
    pub calls: mpsc::Sender<HostCall>,
}

/// How a run ended.
#[derive(Debug)]
pub struct ScriptEnd {
    /// The script's value and, after it ran, its `record` variable (before-save changes).
    pub outcome: Result<(Value, Option<Value>), ScriptError>,
    pub log: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The script called `reject(message)`: a refusal, not a fault.
    pub rejected: bool,
}

struct ThreadRun {
    deadline: Instant,
    calls: mpsc::Sender<HostCall>,
    log: Vec<String>,
    max_log_lines: usize,
    now: DateTime<Utc>,
    settings: Settings,
}

thread_local! {
    static RUN: RefCell<Option<ThreadRun>> = const { RefCell::new(None) };
}

/// Marks the error `reject()` raises.
const REJECTED: &str = "__tessera_rejected";

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(message: impl Into<String>) -> Fallible<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        Position::NONE,
    )))
}

fn with_run<T>(f: impl FnOnce(&mut ThreadRun) -> T) -> Fallible<T> {
    RUN.with(|r| r.borrow_mut().as_mut().map(f)).map_or_else(
        || fail("this function is only available inside an automation run"),
        Ok,
    )
}

fn log_line(line: String) {
    let _ = with_run(|run| {
        if run.log.len() < run.max_log_lines {
            run.log.push(line);
        } else if run.log.len() == run.max_log_lines {
            run.log.push("… (further log lines dropped)".into());
        }
    });
}

/// Sends a call to the host and waits for its answer.
fn host(at: Position, call: Call) -> Fallible<Dynamic> {
    host_call(call).map_err(|mut e| {
        if e.position().is_none() {
            e.set_position(at);
        }
        e
    })
}

fn host_call(call: Call) -> Fallible<Dynamic> {
    let (calls, deadline) = with_run(|run| (run.calls.clone(), run.deadline))?;
    if Instant::now() > deadline {
        return Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::UNIT,
            Position::NONE,
        )));
    }
    let (reply, answer) = oneshot::channel();
    calls
        .blocking_send(HostCall { call, reply })
        .or_else(|_| fail("the run has ended"))?;
    let value = answer
        .blocking_recv()
        .or_else(|_| fail("the run has ended"))?
        .or_else(fail)?;
    to_dynamic(&value)
}

fn to_dynamic(value: &Value) -> Fallible<Dynamic> {
    rhai::serde::to_dynamic(value)
}

fn to_json(value: &Dynamic) -> Fallible<Value> {
    rhai::serde::from_dynamic::<Value>(value)
}

fn date_arg(value: &str) -> Fallible<NaiveDate> {
    let zone = with_run(|run| run.settings.time_zone())?;
    dates::parse(value, zone).map_or_else(
        || fail(format!("'{value}' is not a date (use 2026-03-01)")),
        Ok,
    )
}

fn date_out(date: Option<NaiveDate>) -> Fallible<ImmutableString> {
    date.map_or_else(
        || fail("the date is out of range"),
        |d| Ok(d.format("%Y-%m-%d").to_string().into()),
    )
}

fn today() -> Fallible<NaiveDate> {
    with_run(|run| dates::today(run.now, run.settings.time_zone()))
}

fn money(value: &Dynamic, places: u32) -> Fallible<ImmutableString> {
    let json = to_json(value)?;
    decimal_of(&json).map_or_else(
        || fail(format!("'{value}' is not an amount")),
        |d| Ok(format_money(d, places).into()),
    )
}

/// The `records` module.
fn records_module() -> Module {
    let mut m = Module::new();
    let volatile = |name: &str| FuncRegistration::new(name).with_volatility(true);
    volatile("in_view").set_into_module(
        &mut m,
        |ctx: NativeCallContext, view: &str| -> Fallible<Dynamic> {
            host(
                ctx.call_position(),
                Call::InView {
                    view: view.into(),
                    after: None,
                },
            )
        },
    );
    volatile("in_view").set_into_module(
        &mut m,
        |ctx: NativeCallContext, view: &str, options: Map| -> Fallible<Dynamic> {
            let after = options
                .get("after")
                .filter(|a| !a.is_unit())
                .map(|a| a.to_string());
            host(
                ctx.call_position(),
                Call::InView {
                    view: view.into(),
                    after,
                },
            )
        },
    );
    volatile("find").set_into_module(
        &mut m,
        |ctx: NativeCallContext, entity: &str, filter: &str| -> Fallible<Dynamic> {
            host(
                ctx.call_position(),
                Call::Find {
                    entity: entity.into(),
                    filter: filter.into(),
                    sort: None,
                    limit: i64::MAX,
                },
            )
        },
    );
    volatile("find").set_into_module(
        &mut m,
        |ctx: NativeCallContext, entity: &str, filter: &str, options: Map| -> Fallible<Dynamic> {
            let sort = options.get("sort").map(|s| s.to_string());
            let limit = match options.get("limit") {
                Some(l) => l
                    .as_int()
                    .or_else(|_| fail("limit must be a whole number"))?,
                None => i64::MAX,
            };
            host(
                ctx.call_position(),
                Call::Find {
                    entity: entity.into(),
                    filter: filter.into(),
                    sort,
                    limit,
                },
            )
        },
    );
    volatile("count").set_into_module(
        &mut m,
        |ctx: NativeCallContext, entity: &str, filter: &str| -> Fallible<Dynamic> {
            host(
                ctx.call_position(),
                Call::Count {
                    entity: entity.into(),
                    filter: filter.into(),
                },
            )
        },
    );
    volatile("get").set_into_module(
        &mut m,
        |ctx: NativeCallContext, entity: &str, id: &str| -> Fallible<Dynamic> {
            host(
                ctx.call_position(),
                Call::Get {
                    entity: entity.into(),
                    id: id.into(),
                },
            )
        },
    );
    volatile("create").set_into_module(
        &mut m,
        |ctx: NativeCallContext, entity: &str, data: Map| -> Fallible<Dynamic> {
            let data = to_json(&Dynamic::from_map(data))?;
            host(
                ctx.call_position(),
                Call::Create {
                    entity: entity.into(),
                    data,
                },
            )
        },
    );
    volatile("update").set_into_module(
        &mut m,
        |ctx: NativeCallContext, entity: &str, id: &str, data: Map| -> Fallible<Dynamic> {
            let data = to_json(&Dynamic::from_map(data))?;
            host(
                ctx.call_position(),
                Call::Update {
                    entity: entity.into(),
                    id: id.into(),
                    data,
                },
            )
        },
    );
    volatile("delete").set_into_module(
        &mut m,
        |ctx: NativeCallContext, entity: &str, id: &str| -> Fallible<Dynamic> {
            host(
                ctx.call_position(),
                Call::Delete {
                    entity: entity.into(),
                    id: id.into(),
                },
            )
        },
    );
    m
}

/// The `mail` module: `mail::send(#{ to, template, data })`.
fn mail_module() -> Module {
    let mut m = Module::new();
    FuncRegistration::new("send")
        .with_volatility(true)
        .set_into_module(
            &mut m,
            |ctx: NativeCallContext, message: Map| -> Fallible<Dynamic> {
                let message = to_json(&Dynamic::from_map(message))?;
                let to = match &message["to"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .map_or_else(|| fail("`to` lists email addresses or user ids"), Ok)?,
                    _ => {
                        return fail(
                            "mail::send needs `to`: an email address, a user id or a list",
                        );
                    }
                };
                let Some(template) = message["template"].as_str() else {
                    return fail("mail::send needs `template`: the name of a mail template");
                };
                host(
                    ctx.call_position(),
                    Call::Mail(MailRequest {
                        to,
                        template: template.to_owned(),
                        data: message
                            .get("data")
                            .cloned()
                            .unwrap_or(Value::Object(Default::default())),
                        language: message["language"].as_str().map(str::to_owned),
                        campaign: message["campaign"].as_str().map(str::to_owned),
                    }),
                )
            },
        );
    m
}

/// The `users` module: `users::with_role(role)` — active users holding a role, as
/// `#{ id, name, email, department }`, by email (for assignment rules).
fn users_module() -> Module {
    let mut m = Module::new();
    FuncRegistration::new("with_role")
        .with_volatility(true)
        .set_into_module(
            &mut m,
            |ctx: NativeCallContext, role: &str| -> Fallible<Dynamic> {
                host(
                    ctx.call_position(),
                    Call::UsersWithRole { role: role.into() },
                )
            },
        );
    m
}

/// The `settings` module: `settings::get(key)`.
fn settings_module() -> Module {
    let mut m = Module::new();
    FuncRegistration::new("get")
        .with_volatility(true)
        .set_into_module(&mut m, |key: &str| -> Fallible<Dynamic> {
            let value = with_run(|run| run.settings.get(key).cloned())?;
            match value {
                Some(v) if key == "smtp_url" && !v.is_null() => {
                    fail("smtp_url is not readable from scripts")
                }
                Some(v) => to_dynamic(&v),
                None => fail(format!("there is no setting '{key}'")),
            }
        });
    m
}

/// Functions every script has without a namespace: log, dates, money, reject.
fn global_module() -> Module {
    let mut m = Module::new();
    let volatile = |name: &str| FuncRegistration::new(name).with_volatility(true);
    volatile("log").set_into_module(&mut m, |value: Dynamic| {
        log_line(value.to_string());
    });
    volatile("reject").set_into_module(&mut m, |message: &str| -> Fallible<()> {
        let mut marker = Map::new();
        marker.insert(REJECTED.into(), Dynamic::from(message.to_owned()));
        Err(Box::new(EvalAltResult::ErrorRuntime(
            Dynamic::from_map(marker),
            Position::NONE,
        )))
    });
    volatile("today").set_into_module(&mut m, || date_out(Some(today()?)));
    volatile("now").set_into_module(&mut m, || -> Fallible<ImmutableString> {
        with_run(|run| crate::store::value::format_datetime(&run.now).into())
    });
    volatile("add_days").set_into_module(&mut m, |date: &str, days: i64| {
        date_out(dates::add_days(date_arg(date)?, days))
    });
    volatile("add_months").set_into_module(&mut m, |date: &str, months: i64| {
        date_out(dates::add_months(date_arg(date)?, months))
    });
    volatile("days_until").set_into_module(&mut m, |date: &str| -> Fallible<i64> {
        Ok(dates::days_between(today()?, date_arg(date)?))
    });
    volatile("days_between").set_into_module(&mut m, |from: &str, to: &str| -> Fallible<i64> {
        Ok(dates::days_between(date_arg(from)?, date_arg(to)?))
    });
    volatile("next_anniversary").set_into_module(&mut m, |date: &str| {
        date_out(dates::next_anniversary(date_arg(date)?, today()?))
    });
    volatile("format_money").set_into_module(&mut m, |value: Dynamic| {
        let places = with_run(|run| run.settings.decimal_places("orders"))?;
        money(&value, places)
    });
    volatile("format_money").set_into_module(&mut m, |value: Dynamic, places: i64| {
        money(&value, places.clamp(0, 8) as u32)
    });
    volatile("format_money").set_into_module(&mut m, |value: Dynamic, kind: &str| {
        let places = with_run(|run| run.settings.decimal_places(kind))?;
        money(&value, places)
    });
    volatile("format_date").set_into_module(&mut m, |value: &str, pattern: &str| {
        let zone = with_run(|run| run.settings.time_zone())?;
        format_date(value, Some(pattern), zone).map_or_else(
            || {
                fail(format!(
                    "'{value}' is not a date, or '{pattern}' is not a date pattern"
                ))
            },
            |s| Ok(ImmutableString::from(s)),
        )
    });
    m
}

/// The shared engine.
pub struct ScriptEngine {
    engine: Engine,
    pub limits: Limits,
}

impl std::fmt::Debug for ScriptEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptEngine")
            .field("limits", &self.limits)
            .finish()
    }
}

impl ScriptEngine {
    pub fn new(limits: Limits) -> ScriptEngine {
        let mut engine = Engine::new();
        engine
            .set_module_resolver(DummyModuleResolver::new())
            .set_optimization_level(OptimizationLevel::Simple)
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth / 2)
            .set_max_string_size(limits.max_string)
            .set_max_array_size(limits.max_array)
            .set_max_map_size(limits.max_map)
            .set_max_modules(0)
            .disable_symbol("eval");
        engine.on_print(|text| log_line(text.to_owned()));
        engine.on_debug(|text, _, position| {
            log_line(match position.line() {
                Some(line) => format!("[line {line}] {text}"),
                None => text.to_owned(),
            })
        });
        // The deadline is checked every few thousand operations (reading the clock on each
        // would cost more than the operations).
        engine.on_progress(|operations| {
            if operations % 4096 != 0 {
                return None;
            }
            let late = RUN.with(|r| {
                r.borrow()
                    .as_ref()
                    .is_some_and(|run| Instant::now() > run.deadline)
            });
            late.then_some(Dynamic::UNIT)
        });
        engine.register_global_module(global_module().into());
        engine.register_static_module("records", records_module().into());
        engine.register_static_module("mail", mail_module().into());
        engine.register_static_module("settings", settings_module().into());
        engine.register_static_module("users", users_module().into());
        ScriptEngine { engine, limits }
    }

    /// Compiles a script; a syntax error comes with its line and column.
    pub fn compile(&self, script: &str) -> Result<AST, ScriptError> {
        self.engine.compile(script).map_err(|e| ScriptError {
            message: e.err_type().to_string(),
            line: e.position().line(),
            column: e.position().position(),
            rejected: false,
        })
    }

    /// Starts a run on its own thread; the answer arrives when it ends.
    pub fn start(self: &Arc<Self>, ast: Arc<AST>, setup: RunSetup) -> oneshot::Receiver<ScriptEnd> {
        let (done, ended) = oneshot::channel();
        let engine = self.clone();
        let spawned = std::thread::Builder::new()
            .name("tessera-script".into())
            .stack_size(SCRIPT_STACK)
            .spawn(move || {
                let end = engine.run_here(&ast, setup);
                let _ = done.send(end);
            });
        if let Err(error) = spawned {
            tracing::error!("cannot start a script thread: {error}");
        }
        ended
    }

    fn run_here(&self, ast: &AST, setup: RunSetup) -> ScriptEnd {
        RUN.with(|r| {
            *r.borrow_mut() = Some(ThreadRun {
                deadline: Instant::now() + self.limits.timeout,
                calls: setup.calls,
                log: Vec::new(),
                max_log_lines: self.limits.max_log_lines,
                now: setup.now,
                settings: setup.settings,
            })
        });
        let mut scope = Scope::new();
        let mut prepared = Ok(());
        for (name, value) in &setup.vars {
            match to_dynamic(value) {
                Ok(v) => {
                    scope.push_dynamic(name.clone(), v);
                }
                Err(e) => prepared = Err(e),
            }
        }
        let result = prepared.and_then(|()| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast)
            }))
            .unwrap_or_else(|_| fail("the script engine failed"))
        });
        let record = scope
            .get_value::<Dynamic>("record")
            .and_then(|r| to_json(&r).ok());
        // Dropping the run drops its channel to the host before the answer goes back.
        let run = RUN.with(|r| r.borrow_mut().take());
        let log = run.map(|r| r.log).unwrap_or_default();
        let outcome = match result {
            Ok(value) => Ok((to_json(&value).unwrap_or(Value::Null), record)),
            Err(error) => Err(self.describe(&error)),
        };
        ScriptEnd { outcome, log }
    }

    /// A run's error in words, with the script line it happened on.
    fn describe(&self, error: &EvalAltResult) -> ScriptError {
        let mut inner = error;
        let mut line = error.position().line();
        let mut column = error.position().position();
        while let EvalAltResult::ErrorInFunctionCall(_, _, cause, position) = inner {
            line = line.or(position.line());
            column = column.or(position.position());
            inner = cause;
            if inner.position().line().is_some() {
                line = inner.position().line();
                column = inner.position().position();
            }
        }
        let limits = &self.limits;
        let (message, rejected) = match inner {
            EvalAltResult::ErrorTooManyOperations(_) => (
                format!(
                    "the script ran more than {} operations and was stopped (an endless loop?)",
                    limits.max_operations
                ),
                false,
            ),
            EvalAltResult::ErrorTerminated(..) => (
                format!(
                    "the script ran past its deadline of {} seconds and was stopped",
                    limits.timeout.as_secs_f64()
                ),
                false,
            ),
            EvalAltResult::ErrorStackOverflow(_) => (
                format!(
                    "the script called functions too deeply (more than {} levels) and was stopped",
                    limits.max_call_levels
                ),
                false,
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => (
                format!("the script built data too large ({what}) and was stopped"),
                false,
            ),
            EvalAltResult::ErrorTooManyModules(_) | EvalAltResult::ErrorModuleNotFound(..) => (
                "scripts cannot import modules: they have no file or network access".to_owned(),
                false,
            ),
            EvalAltResult::ErrorRuntime(value, _) => {
                match value
                    .read_lock::<Map>()
                    .and_then(|m| m.get(REJECTED).cloned())
                {
                    Some(message) => (message.to_string(), true),
                    None => (value.to_string(), false),
                }
            }
            other => (strip_position(&other.to_string()), false),
        };
        ScriptError {
            message,
            line,
            column,
            rejected,
        }
    }
}

/// Rhai appends " (line 3, position 7)"; the line is reported on its own.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(at) if message.ends_with(')') => message[..at].to_owned(),
        _ => message.to_owned(),
    }
}
