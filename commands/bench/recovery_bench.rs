//! `recover` and `plan` on a simulated deployment, timed beside a plain replay of the same
//! history (the baseline: loading and folding every event, which both must do at least).
//!
//!     cargo run --release --example recovery_bench
//!
//! RECOVERY_COMMUNITIES (default 20000), RECOVERY_DAYS (30) and RECOVERY_ACTIVITY (0.1, the
//! chance a community changes on a day) set the size; RUNS (3) how many times each is timed.
//! The scenario: an earlier incident repaired (Files restored from last night's backup, its plan
//! recorded and every step done), then the demo's: Activities restored from a backup two days
//! old, Communities from last night's. Queue clears before the repair no longer count as losses,
//! so the analysis may start from a snapshot before the oldest restored backup.
//! RECOVERY_BASELINE_ONLY=1 stops after the baseline (for profiling the fold).
//! RECOVERY_LEDGER=PATH writes the ledger there and keeps it (for `lifeline --ledger PATH …`).
//!
//! `recover` and `plan` are timed twice: with no snapshot (they fold the whole history), then
//! after `lifeline snapshot` has run (RECOVERY_SNAPSHOT_EVERY positions, default 100000), when
//! they continue the snapshot before the oldest restored backup. The plan ids must agree.
//! Last, each runs once more in a process of its own, as `lifeline recover` and `lifeline plan`
//! would: wall time and that process's peak resident memory, apart from the simulator's.

#[path = "support.rs"]
mod support;
use ledger::{Ledger, Options, Timestamp};
use lifeline::domain::{load, At};
use projections::simulate::{backup_label, Config};
use projections::{Database, World};
use std::time::{Duration, Instant};
use support::{median, peak_mib};

const DAY_NS: i64 = 86_400_000_000_000;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Records the plan at the head and every one of its steps as done, as `plan record` and
/// `plan done` do.
fn repair(l: &Ledger) {
    let made = lifeline::plan::make(l, &At::Now, false, &[]).unwrap();
    for e in made.all_done(None, lifeline::plan::PART_BYTES) {
        let p = lifeline::domain::proposed(&e, ledger::EventId::new_random(), None);
        l.append_blocking(&e.stream(), ledger::ExpectedRevision::Any, vec![p])
            .unwrap();
    }
}

/// What a process of its own runs: `recover` or `plan` on the ledger at `path`, from nothing,
/// as the CLI does (which leaves the world for the process's exit to reclaim).
fn child(what: &str, path: &str) {
    // The heap is faulted in ahead, as `lifeline recover` and `lifeline plan` have it.
    let _heap = lifeline::heap::Prefault::start();
    let l = Ledger::open(path, Options::default()).unwrap();
    match what {
        "recover" => {
            let a = lifeline::recover::analyze(&l, &At::Now, false, &[]).unwrap();
            assert!(a.from_snapshot.is_some());
            lifeline::recover::release_at_exit(a);
        }
        _ => {
            let made = lifeline::plan::make(&l, &At::Now, false, &[]).unwrap();
            assert!(made.plan.converges);
            lifeline::recover::release_at_exit(made);
        }
    }
    println!("{}", peak_mib().expect("VmHWM in /proc/self/status"));
}

/// Runs `what` in a child process on the ledger at `path`: its wall time and peak resident
/// memory (MiB). The child reads its own high-water mark, which starts afresh at exec (the
/// kernel's rusage for a child may carry the parent's from before the exec).
fn in_own_process(what: &str, path: &std::path::Path) -> (Duration, u64) {
    let t = Instant::now();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("RECOVERY_CHILD", what)
        .env("RECOVERY_CHILD_LEDGER", path)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    assert!(out.status.success(), "{what} in its own process failed");
    let peak = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the child prints its peak in MiB");
    (elapsed, peak)
}

fn main() {
    if let (Ok(what), Ok(path)) = (
        std::env::var("RECOVERY_CHILD"),
        std::env::var("RECOVERY_CHILD_LEDGER"),
    ) {
        return child(&what, &path);
    }
    let communities: usize = env("RECOVERY_COMMUNITIES", 20_000);
    let days: u32 = env("RECOVERY_DAYS", 30);
    let runs: usize = env("RUNS", 3);
    let start = lifeline::time_fmt::parse("2026-10-01T00:00:00Z").unwrap().0;
    let cfg = Config {
        activity: env("RECOVERY_ACTIVITY", 0.1),
        ..Config::new(communities, days, 1, start)
    };
    let dir = tempfile::tempdir_in(".").unwrap();
    let path = match std::env::var_os("RECOVERY_LEDGER") {
        Some(p) => std::path::PathBuf::from(p),
        None => dir.path().join("recovery.redb"),
    };
    let l = Ledger::open(
        &path,
        Options {
            cache_bytes: 64 << 20,
            ..Options::default()
        },
    )
    .unwrap();
    let t = Instant::now();
    let w = lifeline::simulate::write(&l, &cfg).unwrap();
    let last_day = start + i64::from(days - 1) * DAY_NS;
    let when = Timestamp(last_day + DAY_NS);
    // An earlier incident, repaired: Files restored from last night's backup, a plan recorded
    // and every step of it done. The losses that count start after it.
    let files = backup_label(Database::Files, last_day);
    lifeline::demo::record_restore(&l, cfg.seed, Database::Files, &files, when).unwrap();
    repair(&l);
    for (database, backup) in [
        (
            Database::Activities,
            backup_label(Database::Activities, last_day - 2 * DAY_NS),
        ),
        (
            Database::Communities,
            backup_label(Database::Communities, last_day),
        ),
    ] {
        lifeline::demo::record_restore(&l, cfg.seed, database, &backup, when).unwrap();
    }
    println!(
        "simulated {communities} communities over {days} days: {} events in {:.1?}",
        w.events,
        t.elapsed()
    );
    let mut replay = Vec::new();
    let (mut recover_all, mut plan_all) = (Vec::new(), Vec::new());
    let mut steps = 0;
    let mut baseline_peak = None;
    for _ in 0..runs {
        let t = Instant::now();
        let events = load(&l, l.head(), None).unwrap().events;
        if baseline_peak.is_none() {
            println!("  peak after loading the events: {:?} MiB", peak_mib());
        }
        let world = World::replay(&events);
        if baseline_peak.is_none() {
            baseline_peak = peak_mib();
            println!("  peak after folding them: {baseline_peak:?} MiB");
        }
        std::hint::black_box(&world);
        replay.push(t.elapsed());
        drop((events, world));
        if std::env::var_os("RECOVERY_BASELINE_ONLY").is_some() {
            return;
        }

        // No snapshots yet: both read and fold the whole history.
        let t = Instant::now();
        let a = lifeline::recover::analyze(&l, &At::Now, false, &[]).unwrap();
        recover_all.push(t.elapsed());
        assert!(a.from_snapshot.is_none());
        drop(a);

        let t = Instant::now();
        let made = lifeline::plan::make(&l, &At::Now, false, &[]).unwrap();
        plan_all.push(t.elapsed());
        steps = made.plan.steps.len();
        assert!(made.plan.converges);
    }
    let peak_all = peak_mib();

    // Snapshots, as `lifeline snapshot` writes them (a nightly job), and the tag index.
    let every: u64 = env("RECOVERY_SNAPSHOT_EVERY", 100_000);
    let t = Instant::now();
    let written =
        lifeline::world::build_snapshots(&l, every, lifeline::world::Keep::Thinned, |_| {})
            .unwrap()
            .written;
    lifeline::audit::catch_up(&l).unwrap();
    println!(
        "snapshots: {written} (every {every} positions) and the tag index in {:.1?}",
        t.elapsed()
    );
    let reference = lifeline::plan::make(&l, &At::Now, false, &[]).unwrap();
    let (mut recover_snap, mut plan_snap) = (Vec::new(), Vec::new());
    let mut started = None;
    for _ in 0..runs {
        let t = Instant::now();
        let a = lifeline::recover::analyze(&l, &At::Now, false, &[]).unwrap();
        recover_snap.push(t.elapsed());
        started = a.from_snapshot;
        drop(a);

        let t = Instant::now();
        let made = lifeline::plan::make(&l, &At::Now, false, &[]).unwrap();
        plan_snap.push(t.elapsed());
        assert_eq!(made.id, reference.id);
    }

    let replay = median(replay);
    let ratio = |d: Duration| d.as_secs_f64() / replay.as_secs_f64();
    println!("median of {runs} runs:");
    println!("  baseline: load and fold every event   {replay:>10.1?}");
    for (what, d) in [
        ("recover from the start", median(recover_all)),
        ("plan from the start", median(plan_all)),
        ("recover from a snapshot", median(recover_snap)),
        ("plan from a snapshot", median(plan_snap)),
    ] {
        println!("  {what:<37}{d:>10.1?}  ({:.2}× the baseline)", ratio(d));
    }
    println!(
        "  the plan has {steps} steps; from the snapshot at position {started:?} of {}",
        l.head()
    );
    // The process's high-water mark: memory freed by one phase stays with the allocator, so
    // later phases cannot be told apart; this is the peak of the runs from the start.
    println!(
        "  peak resident memory, runs from the start: {} MiB",
        peak_all.unwrap_or(0)
    );
    l.close();
    drop(l);
    for what in ["recover", "plan"] {
        let (d, peak) = in_own_process(what, &path);
        println!("  {what} in a process of its own: {d:.1?}, peak resident memory {peak} MiB");
    }
}
