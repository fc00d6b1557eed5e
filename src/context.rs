//! What every service shares: the database, the compiled schema, and the record events'
//! subscribers. It sits low in the module graph so services can take it without knowing the
//! server that assembles them (`server.rs`: router, workers, scheduler).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::DatabaseConfig;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::schema::compiled::SchemaCache;
use crate::store::Db;

/// The shared state of one server (or one command-line run).
pub struct Context {
    pub db: Db,
    pub schema: SchemaCache,
    /// Who hears about record writes, and the hooks that run before a save.
    pub events: Events,
    /// This server among those sharing the database (job leases name it).
    pub instance: String,
    /// First wait before a failed job is retried.
    pub retry_base: Duration,
    /// Multiplies the waits between webhook delivery attempts (tests shorten them).
    pub webhook_retry_scale: f64,
    /// Report answers kept while the entities they read are unchanged.
    pub reports: std::sync::Arc<crate::reports::cache::ReportCache>,
    /// The access of sessions and tokens seen, kept while the auth epoch holds.
    pub sign_ins: crate::auth::cache::SignInCache,
    /// Holds the job workers and the scheduler (maintenance, measurements).
    paused: AtomicBool,
    /// Background passes (a worker's claim and run, a scheduler pass) under way.
    busy: AtomicUsize,
}

/// A background pass under way; dropping it ends the pass.
pub struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Context {
    /// Opens the database (creating the data folder and SQLite file when needed) and brings
    /// the system tables up to date.
    pub async fn open(config: &DatabaseConfig) -> Result<Context> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::internal(format!(
                "cannot create the data folder {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let db = Db::connect(config.target()?, config.max_connections).await?;
        db.migrate().await?;
        let ctx = Context {
            db,
            schema: SchemaCache::default(),
            events: Events::default(),
            instance: uuid::Uuid::now_v7().simple().to_string(),
            retry_base: Duration::from_secs(2),
            webhook_retry_scale: 1.0,
            reports: Default::default(),
            sign_ins: Default::default(),
            paused: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
        };
        crate::mail::unsubscribe::ensure_secret(&ctx).await?;
        Ok(ctx)
    }

    pub fn background_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Holds (or lets go) this server's job workers and cron scheduler; a job already
    /// running finishes.
    pub fn pause_background(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Marks a background pass as under way, unless the background is held.
    pub fn background_pass(&self) -> Option<Busy<'_>> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let pass = Busy(&self.busy);
        (!self.background_paused()).then_some(pass)
    }

    /// Waits until no background pass is under way (after [`Context::pause_background`], the
    /// passes in flight finish and no new one starts).
    pub async fn background_settled(&self) {
        while self.busy.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
