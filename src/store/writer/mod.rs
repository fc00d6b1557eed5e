//! Group commit for SQLite. SQLite has one writer at a time, and each commit writes every page
//! it dirtied to the WAL; with a record table's indexes that is a dozen pages per record. So
//! one writer task takes the write jobs queued behind it, runs them in one transaction — each
//! under a savepoint, so a failing job rolls back alone and answers with its own error — and
//! commits once for the batch. A job's caller hears back only after the commit.
//!
//! Jobs of one kind can go further and run *together*: queued with the same key, they become
//! one call of their group function with all their inputs (a dozen creates of one entity by
//! one caller are then a handful of multi-row statements instead of a dozen statements each).
//! If the group fails as a whole, it is rolled back and each member runs alone, so one bad
//! member never fails the others.
//!
//! A job may also leave its last statements to its commit ([`Writer::write_ahead`], an
//! import's batch): it runs alone, its commit is sent after them without waiting, and the next
//! batch begins behind that commit on the same connection, so the writer makes the next batch
//! while SQLite finishes this one. Its caller hears once the commit is made.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::{Sql, Tx};
use crate::error::{Error, Result};
use commits::{Commits, Next, close, next_or_close};

mod commits;

/// The future of a write job, borrowing the transaction it runs in.
pub type WriteFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 't>>;

/// Most jobs one transaction takes.
const MAX_BATCH: usize = 64;

/// Tells a finished job's caller how it ended, once the batch's commit is known (`Some`: the
/// commit failed, with this message).
type Finish = Box<dyn FnOnce(Option<String>) + Send>;

/// What running a unit of a batch (a job, or a group of jobs run together) left: whether
/// anything of it is worth committing, and its callers' answers.
struct Ran {
    ok: bool,
    finish: Vec<Finish>,
}

type Run =
    Box<dyn for<'t> FnOnce(&'t mut Tx) -> Pin<Box<dyn Future<Output = Ran> + Send + 't>> + Send>;

type AnyItem = Box<dyn Any + Send>;
/// A group's answers: one per member, or an error of the group as a whole.
type GroupFuture<'t> = WriteFuture<'t, Vec<Result<AnyItem>>>;
type AnyAnswer = Box<dyn FnOnce(Result<AnyItem>) + Send>;

enum Job {
    Alone {
        run: Run,
        /// Answers the caller when the job cannot run at all.
        abandon: Box<dyn FnOnce(String) + Send>,
        /// Its statements may still run when it returns: it runs in a transaction of its
        /// own, and the commit waits for them.
        ahead: bool,
    },
    Member {
        /// Members of one key in a batch run together.
        key: String,
        item: AnyItem,
        group: Arc<dyn Group>,
        answer: AnyAnswer,
    },
}

/// A group function with its types erased, so members of any kind can share the queue.
trait Group: Send + Sync {
    /// Runs the members' inputs together: an answer for each, in order, or an error of the
    /// group as a whole (after which the caller rolls back what it wrote).
    fn run<'t>(&'t self, tx: &'t mut Tx, items: Vec<AnyItem>) -> GroupFuture<'t>;

    /// A copy of an input, kept to run a member alone when its group fails.
    fn copy(&self, item: &AnyItem) -> Option<AnyItem>;
}

struct Typed<I, T, F> {
    run: F,
    types: PhantomData<fn(I) -> T>,
}

impl<I, T, F> Group for Typed<I, T, F>
where
    I: Clone + Send + 'static,
    T: Send + 'static,
    F: for<'t> Fn(&'t mut Tx, Vec<I>) -> WriteFuture<'t, Vec<Result<T>>> + Send + Sync + 'static,
{
    fn run<'t>(&'t self, tx: &'t mut Tx, items: Vec<AnyItem>) -> GroupFuture<'t> {
        let count = items.len();
        let items: Vec<I> = items
            .into_iter()
            .filter_map(|item| item.downcast::<I>().ok().map(|item| *item))
            .collect();
        Box::pin(async move {
            if items.len() != count {
                return Err(Error::internal(
                    "jobs of different kinds shared a group key",
                ));
            }
            // A statement the group left running is the group's.
            let answers = (self.run)(&mut *tx, items).await;
            let answers = tx.settled(answers).await?;
            if answers.len() != count {
                return Err(Error::internal(
                    "a write group answered the wrong number of jobs",
                ));
            }
            Ok(answers
                .into_iter()
                .map(|answer| answer.map(|value| Box::new(value) as AnyItem))
                .collect())
        })
    }

    fn copy(&self, item: &AnyItem) -> Option<AnyItem> {
        item.downcast_ref::<I>()
            .map(|item| Box::new(item.clone()) as AnyItem)
    }
}

/// The handle write jobs are sent through.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Job {
    fn ahead(&self) -> bool {
        matches!(self, Job::Alone { ahead: true, .. })
    }
}

/// Answers a caller once: the job's result, unless the commit failed after it succeeded.
fn settle<T>(result: Result<T>, commit_error: Option<String>) -> Result<T> {
    match (result, commit_error) {
        (Ok(_), Some(message)) => Err(Error::internal(message)),
        (outcome, _) => outcome,
    }
}

impl Writer {
    /// Starts the writer task on the single-connection write pool; `commits` hears of each
    /// commit (the checkpointer). It ends when the last handle is dropped.
    pub fn start(
        pool: SqlitePool,
        statements: Arc<AtomicU64>,
        commits: mpsc::Sender<()>,
    ) -> Writer {
        let (jobs, queue) = mpsc::channel(1024);
        let writer = run(pool, queue, statements, commits);
        // A thread of its own: on the shared runtime the writer moved between its threads, and
        // what it allocated on one it freed on another (a slow path of the allocator).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => {
                let spawned = std::thread::Builder::new()
                    .name("tessera-writer".into())
                    .spawn(move || runtime.block_on(writer));
                if let Err(error) = spawned {
                    tracing::error!(%error, "cannot start the database writer's thread");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the database writer runs on the shared runtime");
                tokio::spawn(writer);
            }
        }
        Writer { jobs }
    }

    pub async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T> + Send + 'static,
    {
        self.write_job(job, false).await
    }

    /// Runs a job in a transaction of its own that may leave its last statements running for
    /// the commit to wait for: the writer begins the next batch behind that commit without
    /// waiting for it. An error of such a statement (or of the commit) fails the job, and the
    /// jobs begun behind it, after they ran; so it suits a job whose own checks are done by
    /// its reads, whose sent statements fail only as the database does (an import's batch).
    pub async fn write_ahead<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T> + Send + 'static,
    {
        self.write_job(job, true).await
    }

    async fn write_job<T, F>(&self, job: F, ahead: bool) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T>>();
        let answer = Arc::new(Mutex::new(Some(answer)));
        let reply = move |answer: &Arc<Mutex<Option<oneshot::Sender<Result<T>>>>>,
                          value: Result<T>| {
            if let Some(sender) = answer.lock().ok().and_then(|mut a| a.take()) {
                let _ = sender.send(value);
            }
        };
        let for_abandon = answer.clone();
        let run: Run = Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                let result = AssertUnwindSafe(async {
                    // A statement the job left running is the job's: its error fails the job
                    // (here, or for a job ahead, when its commit is known).
                    let result = job(&mut *tx).await;
                    match result {
                        Ok(value) if ahead => Ok(value),
                        result => tx.settled(result).await,
                    }
                })
                .catch_unwind()
                .await;
                let result =
                    result.unwrap_or_else(|_| Err(Error::internal("a write job panicked")));
                let ok = result.is_ok();
                let finish: Finish = Box::new(move |commit_error: Option<String>| {
                    reply(&answer, settle(result, commit_error));
                });
                Ran {
                    ok,
                    finish: vec![finish],
                }
            })
        });
        let abandon = Box::new(move |message: String| {
            if let Some(sender) = for_abandon.lock().ok().and_then(|mut a| a.take()) {
                let _ = sender.send(Err(Error::internal(message)));
            }
        });
        self.send(
            Job::Alone {
                run,
                abandon,
                ahead,
            },
            answered,
        )
        .await
    }

    /// Runs `item` with the other items of `key` queued in the same batch, in one call of
    /// `group` (the first member's). `group` answers each item in order; an item it refuses
    /// must have written nothing. A group error rolls the group back and runs each member
    /// alone. Jobs of one key must be interchangeable: the same kind, caller and schema.
    pub async fn write_together<I, T, F>(&self, key: String, item: I, group: F) -> Result<T>
    where
        I: Clone + Send + 'static,
        T: Send + 'static,
        F: for<'t> Fn(&'t mut Tx, Vec<I>) -> WriteFuture<'t, Vec<Result<T>>>
            + Send
            + Sync
            + 'static,
    {
        let (sender, answered) = oneshot::channel::<Result<T>>();
        let answer: AnyAnswer = Box::new(move |result: Result<AnyItem>| {
            let result = result.and_then(|value| {
                value
                    .downcast::<T>()
                    .map(|value| *value)
                    .map_err(|_| Error::internal("a write group answered another kind"))
            });
            let _ = sender.send(result);
        });
        let group: Arc<dyn Group> = Arc::new(Typed {
            run: group,
            types: PhantomData,
        });
        let job = Job::Member {
            key,
            item: Box::new(item),
            group,
            answer,
        };
        self.send(job, answered).await
    }

    async fn send<T>(&self, job: Job, answered: oneshot::Receiver<Result<T>>) -> Result<T> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| Error::internal("the database writer has stopped"))?;
        answered
            .await
            .map_err(|_| Error::internal("the database writer has stopped"))?
    }
}

/// Members of one group, as taken from a batch.
struct Members {
    group: Arc<dyn Group>,
    items: Vec<AnyItem>,
    answers: Vec<AnyAnswer>,
}

/// A unit of a batch: a job alone, or the members of one key together.
enum Unit {
    Alone {
        run: Run,
        abandon: Box<dyn FnOnce(String) + Send>,
    },
    Together(Members),
}

impl Unit {
    async fn run(self, tx: &mut Tx) -> Ran {
        match self {
            Unit::Alone { run, .. } => run(tx).await,
            Unit::Together(members) => together(tx, members).await,
        }
    }

    /// Answers the callers of a unit that cannot run.
    fn abandon(self, message: String) {
        match self {
            Unit::Alone { abandon, .. } => abandon(message),
            Unit::Together(members) => {
                for answer in members.answers {
                    answer(Err(Error::internal(message.clone())));
                }
            }
        }
    }
}

/// The batch as units to run: alone jobs as they are, members gathered by key (in the order
/// their first member came).
fn units(batch: Vec<Job>) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::with_capacity(batch.len());
    let mut keys: Vec<(String, usize)> = Vec::new();
    for job in batch {
        match job {
            Job::Alone { run, abandon, .. } => units.push(Unit::Alone { run, abandon }),
            Job::Member {
                key,
                item,
                group,
                answer,
            } => {
                if let Some((_, at)) = keys.iter().find(|(k, _)| *k == key)
                    && let Some(Unit::Together(members)) = units.get_mut(*at)
                {
                    members.items.push(item);
                    members.answers.push(answer);
                } else {
                    keys.push((key, units.len()));
                    units.push(Unit::Together(Members {
                        group,
                        items: vec![item],
                        answers: vec![answer],
                    }));
                }
            }
        }
    }
    units
}

fn member_finish(answer: AnyAnswer, result: Result<AnyItem>) -> Finish {
    Box::new(move |commit_error: Option<String>| answer(settle(result, commit_error)))
}

/// Every member answered with the same error (its message: the cause is logged here).
fn all_failed(mut answers: Vec<AnyAnswer>, error: Error) -> Ran {
    let finish = if answers.len() == 1 {
        vec![member_finish(answers.remove(0), Err(error))]
    } else {
        tracing::error!("a write group failed: {error}");
        answers
            .into_iter()
            .map(|answer| member_finish(answer, Err(Error::internal(error.to_string()))))
            .collect()
    };
    Ran { ok: false, finish }
}

/// Runs a group function, a panic in it being an error of the group.
async fn run_group(
    tx: &mut Tx,
    group: &dyn Group,
    items: Vec<AnyItem>,
) -> Result<Vec<Result<AnyItem>>> {
    AssertUnwindSafe(group.run(tx, items))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::internal("a write job panicked")))
}

/// Runs a group's members together; if the group fails as a whole, each alone.
async fn together(tx: &mut Tx, members: Members) -> Ran {
    let Members {
        group,
        items,
        answers,
    } = members;
    let nested = items.len() > 1;
    let copies: Vec<Option<AnyItem>> = if nested {
        items.iter().map(|item| group.copy(item)).collect()
    } else {
        Vec::new()
    };
    if nested && let Err(e) = tx.execute(&Sql::new("SAVEPOINT tessera_group")).await {
        return all_failed(answers, e);
    }
    let mark = tx.after_commit_mark();
    match run_group(tx, &*group, items).await {
        Ok(results) => {
            if nested && let Err(e) = tx.execute(&Sql::new("RELEASE tessera_group")).await {
                return all_failed(answers, e);
            }
            let ok = results.iter().any(Result::is_ok);
            let finish = answers
                .into_iter()
                .zip(results)
                .map(|(answer, result)| member_finish(answer, result))
                .collect();
            Ran { ok, finish }
        }
        Err(error) => {
            tx.forget_after_commit(mark);
            if !nested {
                return all_failed(answers, error);
            }
            if let Err(e) = roll_back(tx).await {
                tracing::error!("a write group failed ({error}) and could not be rolled back: {e}");
                return all_failed(answers, e);
            }
            one_by_one(tx, &*group, copies, answers).await
        }
    }
}

async fn roll_back(tx: &mut Tx) -> Result<()> {
    tx.execute(&Sql::new("ROLLBACK TO tessera_group")).await?;
    tx.execute(&Sql::new("RELEASE tessera_group")).await?;
    Ok(())
}

/// The members of a failed group, each alone under its own savepoint.
async fn one_by_one(
    tx: &mut Tx,
    group: &dyn Group,
    copies: Vec<Option<AnyItem>>,
    answers: Vec<AnyAnswer>,
) -> Ran {
    let mut finish = Vec::with_capacity(answers.len());
    let mut ok = false;
    for (copy, answer) in copies.into_iter().zip(answers) {
        let Some(item) = copy else {
            finish.push(member_finish(
                answer,
                Err(Error::internal("a write job could not be copied")),
            ));
            continue;
        };
        if let Err(e) = tx.execute(&Sql::new("SAVEPOINT tessera_group")).await {
            finish.push(member_finish(answer, Err(e)));
            continue;
        }
        let mark = tx.after_commit_mark();
        // The group answers exactly one result for one item, or fails as a whole.
        let result = match run_group(tx, group, vec![item]).await {
            Ok(mut results) => results
                .pop()
                .unwrap_or_else(|| Err(Error::internal("a write group answered nothing"))),
            Err(error) => Err(error),
        };
        let kept = match &result {
            Ok(_) => tx
                .execute(&Sql::new("RELEASE tessera_group"))
                .await
                .map(|_| ()),
            Err(_) => {
                tx.forget_after_commit(mark);
                roll_back(tx).await
            }
        };
        match kept {
            Ok(()) => {
                ok |= result.is_ok();
                finish.push(member_finish(answer, result));
            }
            Err(e) => finish.push(member_finish(answer, Err(e))),
        }
    }
    Ran { ok, finish }
}

async fn begin(pool: &SqlitePool, statements: &Arc<AtomicU64>) -> Result<Tx, String> {
    match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => Ok(Tx::sqlite(tx, statements.clone())),
        Err(error) => {
            let message = format!("cannot start a write: {error}");
            tracing::error!("{message}");
            Err(message)
        }
    }
}

async fn run(
    pool: SqlitePool,
    mut queue: mpsc::Receiver<Job>,
    statements: Arc<AtomicU64>,
    commits: mpsc::Sender<()>,
) {
    // A job taken for the next batch: a job ahead runs in a batch of its own.
    let mut carried: Option<Job> = None;
    // The connection after a commit sent ahead, with the commits not yet known to be made.
    let mut open: Option<Tx> = None;
    let mut committing = Commits::default();
    loop {
        let first = match (carried.take(), open.take()) {
            (Some(job), tx) => {
                open = tx;
                job
            }
            (None, None) => match queue.recv().await {
                Some(job) => job,
                None => break,
            },
            (None, tx @ Some(_)) => {
                open = tx;
                match next_or_close(&mut open, &mut queue, &mut committing, &commits).await {
                    Next::Job(job) => job,
                    Next::Closed => continue,
                    Next::Stopped => break,
                }
            }
        };
        let ahead = first.ahead();
        let mut batch = vec![first];
        while !ahead && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) if job.ahead() => {
                    carried = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let begun = match open.take() {
            // Behind the commit still on its way.
            Some(mut tx) => {
                let begun_again = if committing.keep_one(&mut tx, &commits).await {
                    tx.begin_again().await
                } else {
                    Err(Error::internal("a commit before failed"))
                };
                match begun_again {
                    Ok(()) => Ok(tx),
                    Err(error) => {
                        // A statement or a commit before failed: begin afresh.
                        committing.settle(&mut tx, &commits, Some(error)).await;
                        drop(tx);
                        begin(&pool, &statements).await
                    }
                }
            }
            None => begin(&pool, &statements).await,
        };
        let mut tx = match begun {
            Ok(tx) => tx,
            Err(message) => {
                for unit in units(batch) {
                    unit.abandon(message.clone());
                }
                continue;
            }
        };
        let units = units(batch);
        let alone = units.len() == 1;
        let mut finished: Vec<Finish> = Vec::new();
        let mut any_ok = false;
        let mut broken: Option<String> = None;
        for unit in units {
            if let Some(message) = &broken {
                // The transaction is in an unknown state: the rest of the batch does not run.
                unit.abandon(message.clone());
                continue;
            }
            if !alone && let Err(e) = tx.execute(&Sql::new("SAVEPOINT tessera_job")).await {
                let message = format!("cannot start a write: {e}");
                unit.abandon(message.clone());
                broken = Some(message);
                continue;
            }
            let mark = tx.after_commit_mark();
            let ran = unit.run(&mut tx).await;
            if !ran.ok {
                tx.forget_after_commit(mark);
            }
            if !alone {
                let end = if ran.ok {
                    tx.execute(&Sql::new("RELEASE tessera_job")).await
                } else {
                    match tx.execute(&Sql::new("ROLLBACK TO tessera_job")).await {
                        Ok(_) => tx.execute(&Sql::new("RELEASE tessera_job")).await,
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = end {
                    broken = Some(format!("a write could not be finished: {e}"));
                }
            }
            any_ok |= ran.ok;
            finished.extend(ran.finish);
        }
        let commit_error = if broken.is_some() || (alone && !any_ok) {
            // Nothing worth keeping, or the transaction is in an unknown state: roll back,
            // once the commits sent before are known.
            committing.settle(&mut tx, &commits, None).await;
            drop(tx);
            broken
        } else if ahead {
            match tx.commit_ahead().await {
                Ok((made, after_commit)) => {
                    committing.answer_made(&commits);
                    committing.push(made, after_commit, finished);
                    open = Some(tx);
                    continue;
                }
                Err(error) => {
                    let message = format!("the write could not be committed: {error}");
                    committing.settle(&mut tx, &commits, Some(error)).await;
                    drop(tx);
                    Some(message)
                }
            }
        } else if let Some(error) = committing.settle(&mut tx, &commits, None).await {
            // Begun behind a commit that failed: nothing of it ran.
            drop(tx);
            Some(error)
        } else {
            let committed = tx.commit().await;
            if committed.is_ok() {
                // Full: a checkpoint is due already.
                let _ = commits.try_send(());
            }
            committed
                .err()
                .map(|e| format!("the write could not be committed: {e}"))
        };
        for finish in finished {
            finish(commit_error.clone());
        }
    }
    if let Some(mut tx) = open.take() {
        committing.settle(&mut tx, &commits, None).await;
        close(Some(tx)).await;
    }
}
