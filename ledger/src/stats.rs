//! What the writer has done since the ledger was opened: its group commits, the requests and
//! events in them, how each was made durable, and where its time went. The writer alone counts,
//! with a few relaxed atomic additions a commit; a reader takes the counters as they are (two
//! reads a moment apart give rates).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The writer's counters since the ledger was opened (see [`crate::Ledger::writer_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterStats {
    /// Group commits: each takes every request queued when it starts (up to the limits).
    pub commits: u64,
    /// Write requests answered (appends, deletes, imports, …), whatever their outcome.
    pub requests: u64,
    /// Positions written.
    pub events: u64,
    /// Commits made durable by a synced write-ahead log frame.
    pub logged: u64,
    /// Durable redb commits: large commits, snapshots and tags, and checkpoints of the log.
    pub checkpoints: u64,
    /// Redb commits of logged commits (not durable on their own: the log is). Several logged
    /// commits share one while requests keep coming; readers see a commit once it is in one.
    pub stored: u64,
    /// Time the writer spent committing (waiting for requests is not counted), in nanoseconds.
    pub committing_ns: u64,
    /// Of that, time spent writing and syncing write-ahead log frames, in nanoseconds.
    pub wal_ns: u64,
}

impl WriterStats {
    /// What happened between `earlier` and `self` (both of one ledger).
    pub fn since(&self, earlier: &WriterStats) -> WriterStats {
        WriterStats {
            commits: self.commits - earlier.commits,
            requests: self.requests - earlier.requests,
            events: self.events - earlier.events,
            logged: self.logged - earlier.logged,
            checkpoints: self.checkpoints - earlier.checkpoints,
            stored: self.stored - earlier.stored,
            committing_ns: self.committing_ns - earlier.committing_ns,
            wal_ns: self.wal_ns - earlier.wal_ns,
        }
    }

    /// Requests a commit answered, on average.
    pub fn requests_per_commit(&self) -> f64 {
        self.requests as f64 / self.commits.max(1) as f64
    }

    /// Time a commit took, on average.
    pub fn commit_time(&self) -> Duration {
        Duration::from_nanos(self.committing_ns / self.commits.max(1))
    }

    /// Time a write-ahead log frame took to write and sync, on average.
    pub fn wal_time(&self) -> Duration {
        Duration::from_nanos(self.wal_ns / self.logged.max(1))
    }

    /// Logged commits a redb commit stored, on average.
    pub fn logged_per_stored(&self) -> f64 {
        self.logged as f64 / self.stored.max(1) as f64
    }

    /// One line for people, of counters gathered over `over` (see [`WriterStats::since`]):
    /// commits and their rate, requests a commit, the share of the time spent committing, a
    /// commit's time and the write-ahead log's part of it, and logged commits a redb commit.
    pub fn summary(&self, over: Duration) -> String {
        let seconds = over.as_secs_f64().max(f64::MIN_POSITIVE);
        format!(
            "{} commits ({:.0}/s), {:.1} requests each, committing {:.0}% of the time, a commit {:.0} µs of which the write-ahead log's write and sync {:.0} µs; {:.1} logged commits a redb commit",
            self.commits,
            self.commits as f64 / seconds,
            self.requests_per_commit(),
            100.0 * self.committing_ns as f64 / (seconds * 1e9),
            self.commit_time().as_secs_f64() * 1e6,
            self.wal_time().as_secs_f64() * 1e6,
            self.logged_per_stored()
        )
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    requests: AtomicU64,
    events: AtomicU64,
    logged: AtomicU64,
    checkpoints: AtomicU64,
    stored: AtomicU64,
    committing_ns: AtomicU64,
    wal_ns: AtomicU64,
}

impl Counters {
    pub(crate) fn committed(&self, requests: usize, events: u64, took: Duration) {
        self.commits.fetch_add(1, Relaxed);
        self.requests.fetch_add(requests as u64, Relaxed);
        self.events.fetch_add(events, Relaxed);
        self.committing_ns.fetch_add(nanos(took), Relaxed);
    }

    pub(crate) fn logged(&self, took: Duration) {
        self.logged.fetch_add(1, Relaxed);
        self.wal_ns.fetch_add(nanos(took), Relaxed);
    }

    /// A redb commit of logged commits, which took `took` (counted as committing time).
    pub(crate) fn stored(&self, took: Duration) {
        self.stored.fetch_add(1, Relaxed);
        self.committing_ns.fetch_add(nanos(took), Relaxed);
    }

    pub(crate) fn checkpointed(&self) {
        self.checkpoints.fetch_add(1, Relaxed);
    }

    pub(crate) fn read(&self) -> WriterStats {
        WriterStats {
            commits: self.commits.load(Relaxed),
            requests: self.requests.load(Relaxed),
            events: self.events.load(Relaxed),
            logged: self.logged.load(Relaxed),
            checkpoints: self.checkpoints.load(Relaxed),
            stored: self.stored.load(Relaxed),
            committing_ns: self.committing_ns.load(Relaxed),
            wal_ns: self.wal_ns.load(Relaxed),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_gives_rates_shares_and_means_of_the_counters() {
        let w = WriterStats {
            commits: 4,
            requests: 10,
            events: 12,
            logged: 3,
            checkpoints: 1,
            stored: 2,
            committing_ns: 1_000_000_000,
            wal_ns: 600_000,
        };
        assert_eq!(
            w.summary(Duration::from_secs(2)),
            "4 commits (2/s), 2.5 requests each, committing 50% of the time, a commit 250000 µs \
             of which the write-ahead log's write and sync 200 µs; 1.5 logged commits a redb \
             commit"
        );
        // Nothing counted: no division by zero.
        assert!(WriterStats::default()
            .summary(Duration::ZERO)
            .starts_with("0 commits (0/s), 0.0 requests each, committing 0%"));
    }
}
