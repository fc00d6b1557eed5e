//! Commits sent ahead (see [`super::Writer::write_ahead`]): the writer's connection goes on to
//! the next batch behind them, and their callers hear once each is made.

use std::collections::VecDeque;

use tokio::sync::{mpsc, oneshot};

use super::{Finish, Job};
use crate::error::Error;
use crate::store::{AfterCommit, Tx};

/// A transaction whose commit was sent ahead ([`Tx::commit_ahead`]): its callers hear once the
/// commit is made.
struct Committing {
    made: oneshot::Receiver<()>,
    /// Its mark was dropped: a statement before it, or the commit, failed (the receiver
    /// cannot be asked again).
    failed: bool,
    after_commit: Vec<AfterCommit>,
    finished: Vec<Finish>,
}

impl Committing {
    /// Answers the callers: the commit was made (`None`), or why not.
    fn answer(self, failure: Option<String>, commits: &mpsc::Sender<()>) {
        if failure.is_none() {
            for work in self.after_commit {
                work();
            }
            // Full: a checkpoint is due already.
            let _ = commits.try_send(());
        }
        for finish in self.finished {
            finish(failure.clone());
        }
    }
}

/// The commits sent ahead on the writer's connection, oldest first.
#[derive(Default)]
pub(super) struct Commits(VecDeque<Committing>);

impl Commits {
    /// A commit sent ahead ([`Tx::commit_ahead`]), after those before it.
    pub(super) fn push(
        &mut self,
        made: oneshot::Receiver<()>,
        after_commit: Vec<AfterCommit>,
        finished: Vec<Finish>,
    ) {
        self.0.push_back(Committing {
            made,
            failed: false,
            after_commit,
            finished,
        });
    }

    /// Answers the commits known to be made by now; stops at one known to have failed.
    pub(super) fn answer_made(&mut self, commits: &mpsc::Sender<()>) {
        while let Some(front) = self.0.front_mut()
            && !front.failed
        {
            match front.made.try_recv() {
                Ok(()) => {
                    if let Some(made) = self.0.pop_front() {
                        made.answer(None, commits);
                    }
                }
                Err(oneshot::error::TryRecvError::Empty) => break,
                Err(oneshot::error::TryRecvError::Closed) => front.failed = true,
            }
        }
    }

    /// Waits until at most one commit is on its way, so that a failure takes at most the one
    /// batch begun behind it along. False when one failed: every commit is then answered and
    /// `tx` settled, to be dropped.
    pub(super) async fn keep_one(&mut self, tx: &mut Tx, commits: &mpsc::Sender<()>) -> bool {
        while self.0.len() > 1 {
            let Some(front) = self.0.front_mut() else {
                break;
            };
            if !front.failed && (&mut front.made).await.is_ok() {
                if let Some(made) = self.0.pop_front() {
                    made.answer(None, commits);
                }
            } else {
                front.failed = true;
                self.settle(tx, commits, None).await;
                return false;
            }
        }
        true
    }

    /// Waits for everything sent on `tx`, and answers every commit: made, or not made because
    /// of the error that stopped the statements (returned).
    /// `cause`: the error already taken from `tx`, if the caller has it.
    pub(super) async fn settle(
        &mut self,
        tx: &mut Tx,
        commits: &mpsc::Sender<()>,
        cause: Option<Error>,
    ) -> Option<String> {
        let error = tx
            .settle()
            .await
            .err()
            .or(cause)
            .map(|e| format!("the write could not be committed: {e}"));
        for mut committing in self.0.drain(..) {
            // Once the statements have run, a commit's mark was answered or dropped.
            let made = !committing.failed && committing.made.try_recv().is_ok();
            let failure = (!made).then(|| {
                error
                    .clone()
                    .unwrap_or_else(|| "the write could not be committed".to_owned())
            });
            committing.answer(failure, commits);
        }
        error
    }
}

/// What came first while a commit was on its way.
pub(super) enum Next {
    /// A job, to begin behind the commit on the connection (still open).
    Job(Job),
    /// The commits are known, and the connection is back in the pool.
    Closed,
    /// The queue closed.
    Stopped,
}

/// With commits on their way on `open`'s connection: the next job as soon as one comes, or,
/// once every commit is known first, the connection given back (`open` is then empty).
pub(super) async fn next_or_close(
    open: &mut Option<Tx>,
    queue: &mut mpsc::Receiver<Job>,
    committing: &mut Commits,
    commits: &mpsc::Sender<()>,
) -> Next {
    enum Event {
        Job(Option<Job>),
        Made(bool),
    }
    loop {
        committing.answer_made(commits);
        let Some(tx) = open.as_mut() else {
            return Next::Closed;
        };
        let Some(front) = committing.0.front_mut() else {
            close(open.take()).await;
            return Next::Closed;
        };
        let event = if front.failed {
            Event::Made(false)
        } else {
            tokio::select! {
                biased;
                job = queue.recv() => Event::Job(job),
                made = &mut front.made => Event::Made(made.is_ok()),
            }
        };
        match event {
            Event::Job(Some(job)) => return Next::Job(job),
            Event::Job(None) => {
                committing.settle(tx, commits, None).await;
                close(open.take()).await;
                return Next::Stopped;
            }
            Event::Made(true) => {
                if let Some(made) = committing.0.pop_front() {
                    made.answer(None, commits);
                }
            }
            Event::Made(false) => {
                // A statement or a commit failed: what was sent after it did not run. The
                // transaction is dropped, and rolls back.
                committing.settle(tx, commits, None).await;
                *open = None;
                return Next::Closed;
            }
        }
    }
}

/// Gives the connection back once its commits are known ([`Tx::close`]).
pub(super) async fn close(tx: Option<Tx>) {
    if let Some(tx) = tx
        && let Err(error) = tx.close().await
    {
        tracing::warn!(%error, "the database writer could not end a transaction");
    }
}
