//! Automations: Rhai scripts fired by record events, before saves, cron schedules or by hand;
//! run on the durable job queue with the permissions of their run-as user.

pub mod cron;
pub mod dates;
pub mod definition;
pub mod engine;
pub mod run;
pub mod service;
pub mod shapes;
pub mod triggers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rhai::AST;

use engine::{Limits, ScriptEngine, ScriptError};
use run::Script;

/// The engine and the compiled scripts (by automation, for its current version).
#[derive(Debug)]
pub struct Scripts {
    pub engine: Arc<ScriptEngine>,
    compiled: Mutex<HashMap<String, (i64, Arc<AST>)>>,
}

impl Scripts {
    pub fn new(limits: Limits) -> Scripts {
        Scripts {
            engine: Arc::new(ScriptEngine::new(limits)),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The compiled script of an automation version (compiled once, then shared).
    pub fn ast(&self, script: &Script) -> Result<Arc<AST>, ScriptError> {
        if let Ok(cache) = self.compiled.lock()
            && let Some((version, ast)) = cache.get(&script.automation_id)
            && *version == script.version
        {
            return Ok(ast.clone());
        }
        let ast = Arc::new(self.engine.compile(&script.source)?);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(script.automation_id.clone(), (script.version, ast.clone()));
        }
        Ok(ast)
    }
}
