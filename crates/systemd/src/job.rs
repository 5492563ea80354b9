//! Watching a unit's start job without asking the manager again and again.

/// What a [`JobWatch`] knows of the job it watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// The job has not ended: the unit is still starting.
    Running,
    /// The job is done: the unit has started (for `Type=notify`, it said it
    /// was ready).
    Done,
    /// The job failed; said once, the watch is [`Unwatched`](Self::Unwatched)
    /// from then on (the manager may restart the unit under a new job).
    Failed,
    /// Nothing watches: ask the manager.
    Unwatched,
}

/// A start or restart job, watched by a `systemctl start` that waits for it.
///
/// A start asked for a unit that already has a start or restart job queued
/// joins that job (systemd merges them) instead of adding one, so the waiting
/// `systemctl` ends exactly when the job does, and asks nothing while it
/// waits. For a unit with no job queued it is a start like any other: watch
/// only units just started or restarted, or found starting. Dropping the watch
/// stops that `systemctl`, never the job.
#[derive(Debug)]
pub struct JobWatch {
    child: Option<tokio::process::Child>,
    done: bool,
}

impl JobWatch {
    /// A watch that knows nothing.
    pub fn none() -> Self {
        Self {
            child: None,
            done: false,
        }
    }

    /// A watch of the process that waits for the job; it is stopped when the
    /// watch is dropped.
    pub fn of(child: tokio::process::Child) -> Self {
        Self {
            child: Some(child),
            done: false,
        }
    }

    /// Where the job is; never blocks.
    pub fn poll(&mut self) -> Job {
        if self.done {
            return Job::Done;
        }
        let Some(child) = &mut self.child else {
            return Job::Unwatched;
        };
        match child.try_wait() {
            Ok(None) => Job::Running,
            Ok(Some(status)) => {
                self.child = None;
                self.done = status.success();
                if self.done { Job::Done } else { Job::Failed }
            }
            Err(_) => {
                self.child = None;
                Job::Unwatched
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls until the watch knows more than that the job runs.
    async fn settled(watch: &mut JobWatch) -> Job {
        for _ in 0..500 {
            match watch.poll() {
                Job::Running => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                other => return other,
            }
        }
        panic!("the watched process never ended");
    }

    fn watching(program: &str, args: &[&str]) -> JobWatch {
        JobWatch::of(
            tokio::process::Command::new(program)
                .args(args)
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_watch_says_done_for_good_and_failed_once() {
        let mut done = watching("true", &[]);
        assert_eq!(settled(&mut done).await, Job::Done);
        assert_eq!(done.poll(), Job::Done);

        let mut failed = watching("false", &[]);
        assert_eq!(settled(&mut failed).await, Job::Failed);
        assert_eq!(failed.poll(), Job::Unwatched);

        assert_eq!(JobWatch::none().poll(), Job::Unwatched);
    }

    #[tokio::test]
    async fn dropping_a_watch_stops_its_process() {
        let mut watch = watching("sleep", &["60"]);
        assert_eq!(watch.poll(), Job::Running);
        let pid = watch.child.as_ref().unwrap().id().unwrap();
        drop(watch);
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
        });
        assert!(gone, "the watching process {pid} still runs");
    }
}
