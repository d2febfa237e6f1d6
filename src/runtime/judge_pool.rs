//! The judge's own threads. Searching the embedded index and re-scoring the candidates is CPU
//! work of a few milliseconds; done on the async workers it would hold up every other request
//! (health checks, metrics, survey pages) and count local queueing in upstream call times. It
//! runs here instead: a fixed number of threads (one per core by default) fed by a bounded
//! queue. When every thread is busy and the queue is full, a judgement is refused at once
//! ([`PoolError::Busy`]) so the webhook is answered 503 with `Retry-After` instead of waiting
//! until the helpdesk gives up.

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use crossbeam_channel::{Sender, TrySendError};

type Job = Box<dyn FnOnce() + Send>;

/// Judgements that may wait for a thread, per thread, by default.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("the judge is busy: every judge thread is working and the queue is full")]
    Busy,
    #[error("the judgement failed (the judge thread panicked)")]
    Failed,
}

/// A bounded pool of judge threads. Dropping the last handle lets the threads finish the queue
/// and end.
pub struct JudgePool {
    queue: Sender<Job>,
    threads: usize,
}

impl JudgePool {
    /// `threads` threads and room for `queue` judgements waiting (0: only when a thread is idle).
    pub fn new(threads: NonZeroUsize, queue: usize) -> std::io::Result<Arc<JudgePool>> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue);
        for n in 0..threads.get() {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("judge-{n}"))
                .spawn(move || {
                    yield_to_http();
                    for job in rx {
                        job();
                    }
                })?;
        }
        Ok(Arc::new(JudgePool {
            queue: tx,
            threads: threads.get(),
        }))
    }

    /// The pool every connector shares unless given another: one thread per core, and
    /// [`DEFAULT_QUEUE_PER_THREAD`] waiting judgements per thread.
    pub fn shared() -> Arc<JudgePool> {
        static SHARED: LazyLock<Arc<JudgePool>> = LazyLock::new(|| {
            let threads = default_threads();
            JudgePool::new(threads, threads.get() * DEFAULT_QUEUE_PER_THREAD)
                .expect("the judge threads start")
        });
        Arc::clone(&SHARED)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many judgements may wait for a thread.
    pub fn queue_capacity(&self) -> usize {
        self.queue.capacity().unwrap_or(0)
    }

    /// Judgements waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Runs `job` on a judge thread and waits for its result without holding an async worker.
    /// Refused at once with [`PoolError::Busy`] when the queue is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(job)));
        });
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Busy,
            TrySendError::Disconnected(_) => PoolError::Failed,
        })?;
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(PoolError::Failed),
        }
    }
}

/// How much nicer than the rest of the process a judge thread is: when the cores are busy
/// judging, the threads that serve HTTP (health checks, metrics, upstream answers) still get
/// one at once.
#[cfg(target_os = "linux")]
const JUDGE_NICENESS: i32 = 10;

/// Lowers the calling judge thread's priority by [`JUDGE_NICENESS`] (Linux; elsewhere a thread
/// has no priority of its own to lower).
#[cfg(target_os = "linux")]
fn yield_to_http() {
    use rustix::process::{getpriority_process, setpriority_process};
    let me = Some(rustix::thread::gettid());
    let lowered = getpriority_process(me)
        .and_then(|nice| setpriority_process(me, (nice + JUDGE_NICENESS).min(19)));
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "Judge thread priority could not be lowered");
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_to_http() {}

/// One judge thread per core the process may use.
pub fn default_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> NonZeroUsize {
        NonZeroUsize::MIN
    }

    #[tokio::test]
    async fn runs_jobs_and_refuses_when_full() {
        let pool = JudgePool::new(one(), 1).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, on_start) = tokio::sync::oneshot::channel::<()>();
        let busy = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started.send(());
                    wait.recv().ok()
                })
                .await
            })
        };
        on_start.await.unwrap();
        let queued = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.run(|| "queued").await })
        };
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| "refused").await, Err(PoolError::Busy));
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(Some(())));
        assert_eq!(queued.await.unwrap(), Ok("queued"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn judge_threads_are_nicer_than_the_rest() {
        use rustix::process::getpriority_process;
        let nice = || getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let pool = JudgePool::new(one(), 1).unwrap();
        let judge = pool.run(nice).await.unwrap();
        assert_eq!(judge, (nice() + JUDGE_NICENESS).min(19));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let pool = JudgePool::new(one(), 1).unwrap();
        let failed = pool.run(|| -> u8 { panic!("judge bug") }).await;
        assert_eq!(failed, Err(PoolError::Failed));
        let mut ok = Err(PoolError::Busy);
        while ok == Err(PoolError::Busy) {
            ok = pool.run(|| 1).await;
        }
        assert_eq!(ok, Ok(1));
    }
}
