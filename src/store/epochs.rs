//! The schema and auth epochs, which every signed-in request reads before anything else, read
//! once for all the requests waiting at that moment. A request is answered by a read that
//! started after it asked, so a change committed before a request arrives (a revoked token, a
//! deactivated user) holds for it exactly as if it had read alone; under load, a dozen
//! requests share one read instead of queueing a dozen at the connection pool.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::Db;
use crate::error::{Error, Result};

type Answer = std::result::Result<(i64, i64), String>;

#[derive(Default)]
struct Waiting {
    /// Whether a task is reading (and will look for new waiters when done).
    reading: bool,
    /// Requests that asked since the current read started.
    next: Vec<oneshot::Sender<Answer>>,
}

#[derive(Default, Clone)]
pub(super) struct SharedEpochs(Arc<Mutex<Waiting>>);

impl std::fmt::Debug for SharedEpochs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedEpochs")
    }
}

impl SharedEpochs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Db {
    /// The schema epoch and the auth epoch, as of a read that started after this call.
    pub async fn epochs(&self) -> Result<(i64, i64)> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut waiting = self.epochs.lock();
            waiting.next.push(answer);
            !std::mem::replace(&mut waiting.reading, true)
        };
        if start {
            let db = self.clone();
            tokio::spawn(async move { db.read_epochs_for_waiters().await });
        }
        answered
            .await
            .map_err(|_| Error::internal("the epoch read was dropped"))?
            .map_err(Error::internal)
    }

    async fn read_epochs_for_waiters(&self) {
        loop {
            let waiters = {
                let mut waiting = self.epochs.lock();
                if waiting.next.is_empty() {
                    waiting.reading = false;
                    return;
                }
                std::mem::take(&mut waiting.next)
            };
            let mut db = self;
            let read = super::auth::epochs(&mut db).await.map_err(|error| {
                tracing::error!("reading the epochs failed: {error}");
                "reading the epochs failed".to_owned()
            });
            for waiter in waiters {
                let _ = waiter.send(read.clone());
            }
        }
    }
}
