//! WAL checkpoints off the writer's path. SQLite copies the write-ahead log back into the
//! database file in a checkpoint, by default inside the commit that takes the log past 1,000
//! pages: the one writer then stops to copy the pages and sync the file, and every write queued
//! behind it waits (measured: a third of the time of a batch of creates). So the writer's own
//! checkpoints only start at a much larger log, as a safety net, and this task checkpoints
//! from a connection of the read pool, beside the writer, a few times a second while there
//! are commits. A passive checkpoint never blocks the writer or the readers.

use std::time::{Duration, Instant};

use sqlx::SqlitePool;
use tokio::sync::mpsc;

/// Pages of log at which the writer checkpoints itself (64 MB of 4 KB pages), should this
/// task fall behind.
pub const WRITER_CHECKPOINT_PAGES: u32 = 16_384;

/// The shortest time between two checkpoints: each ends with a sync of the database file.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Starts the checkpointer; `commits` says that the writer committed. It ends when the
/// writer does (the sender is dropped).
pub fn start(read: SqlitePool) -> mpsc::Sender<()> {
    let (commits, mut committed) = mpsc::channel(1);
    tokio::spawn(async move {
        while committed.recv().await.is_some() {
            let started = Instant::now();
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&read)
                .await
            {
                // Closing the database ends the task; the close checkpoints the log itself.
                if read.is_closed() {
                    break;
                }
                tracing::warn!("a WAL checkpoint failed: {error}");
            }
            tokio::time::sleep(MIN_INTERVAL.saturating_sub(started.elapsed())).await;
        }
    });
    commits
}
