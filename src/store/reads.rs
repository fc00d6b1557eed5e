//! SQLite's read connections, pooled without a round trip per statement. sqlx's pool pings a
//! connection each time it comes back (on a task spawned for it), to catch one left mid-query
//! by a cancelled future. A SQLite connection answers commands in order on its own thread, so a
//! statement sent after a cancelled one simply runs after it: the ping finds nothing, and it
//! was a second hand-over between threads for every read (a list request makes three).

use std::sync::{Arc, Mutex, PoisonError};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// How long a statement waits for a connection before it fails (as sqlx's pools do).
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
pub struct Reads {
    inner: Arc<Inner>,
}

struct Inner {
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Arc<Semaphore>,
    options: SqliteConnectOptions,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads")
            .field("available", &self.inner.permits.available_permits())
            .finish()
    }
}

impl Reads {
    /// Up to `max` connections, opened when first needed.
    pub fn new(options: SqliteConnectOptions, max: usize) -> Reads {
        Reads {
            inner: Arc::new(Inner {
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max)),
                options,
            }),
        }
    }

    /// A connection for one statement; it goes back to the pool when dropped.
    pub async fn acquire(&self) -> Result<Lease> {
        let waited =
            tokio::time::timeout(ACQUIRE_TIMEOUT, self.inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| Error::internal("no read connection came free in 30 s"))?;
        let permit = waited.map_err(|_| Error::internal("the read connections are closed"))?;
        let idle = self.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.inner.options.connect().await?,
        };
        Ok(Lease {
            conn: Some(conn),
            reads: self.clone(),
            _permit: permit,
        })
    }

    /// Closes the idle connections and refuses new leases.
    pub async fn close(&self) {
        self.inner.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for conn in idle {
            let _ = conn.close().await;
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A read connection on loan.
pub struct Lease {
    conn: Option<SqliteConnection>,
    reads: Reads,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub fn conn(&mut self) -> &mut SqliteConnection {
        // Only `drop` takes it out.
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.reads.inner.permits.is_closed()
        {
            self.reads.idle().push(conn);
        }
    }
}
