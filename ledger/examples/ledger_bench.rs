//! The ledger's speed, each workload beside the same one on SQLite (WAL, synchronous=FULL, a
//! unique (stream, revision) index) in the same process, so ratios hold on a noisy machine.
//!
//!     cargo run --release -p ledger --example ledger_bench
//!
//! BENCH_EVENTS (default 1000000) sets the bulk size, BENCH_REPS (default 5) the repetitions of
//! the short workloads, BENCH_DIR the scratch directory. BENCH_IMPORT_ONLY=1 stops after the
//! ledger's bulk import (for profiling it).

use ledger::*;
use std::time::{Duration, Instant};

const STREAMS: u64 = 10_000;
const EVENT_BYTES: usize = 300;
const IMPORT_BATCH: usize = 100_000;
const IMPORT_CACHE_BYTES: usize = 16 * 1024 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn payload(i: u64) -> Vec<u8> {
    let mut s = format!(
        "{{\"community\":\"{:032x}\",\"seq\":{i},\"pad\":\"",
        i % STREAMS
    );
    while s.len() < EVENT_BYTES - 2 {
        s.push(char::from(b'a' + (i % 26) as u8));
    }
    s.push_str("\"}");
    s.into_bytes()
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

struct Row(&'static str, String, String, String);

fn main() {
    let n = env_u64("BENCH_EVENTS", 1_000_000);

    let dir = match std::env::var("BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir_in(".").unwrap(),
    };
    let mut rows = Vec::new();

    // 1. Bulk import.
    let rss_before = peak_rss_mb();
    // Import writes and hardly reads: a small page cache, as `lifeline import` opens it.
    let bulk_options = Options {
        cache_bytes: IMPORT_CACHE_BYTES,
        ..Options::default()
    };
    let l = Ledger::open(dir.path().join("bulk.redb"), bulk_options).unwrap();
    let mut next_rev = vec![0u64; STREAMS as usize];
    let t = Instant::now();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for i in 0..n {
        let s = i.wrapping_mul(2_654_435_761) % STREAMS;
        let revision = next_rev[s as usize];
        next_rev[s as usize] += 1;
        batch.push(ImportRecord {
            stream: format!("community-{s}"),
            revision,
            recorded: Timestamp(1),
            event: ProposedEvent {
                id: EventId(uuid::Uuid::from_u128(u128::from(i) + 1)),
                event_type: "CommunityUpdated".into(),
                content_type: ContentType::Json,
                data: payload(i),
                metadata: Vec::new(),
                occurred: None,
            },
        });
        if batch.len() == IMPORT_BATCH {
            l.import_blocking(std::mem::take(&mut batch)).unwrap();
        }
    }
    if !batch.is_empty() {
        l.import_blocking(batch).unwrap();
    }
    let bulk = t.elapsed();
    let rss = peak_rss_mb() - rss_before;
    if std::env::var_os("BENCH_IMPORT_ONLY").is_some() {
        println!(
            "bulk import: {:.0} events/s, peak memory {rss:.0} MB",
            rate(n, bulk)
        );
        return;
    }
    let sq_bulk = sqlite_bulk(dir.path(), n);
    rows.push(Row(
        "bulk import, events/s",
        format!("{:.0}", rate(n, bulk)),
        format!("{:.0}", rate(n, sq_bulk)),
        format!("{:.2}×", sq_bulk.as_secs_f64() / bulk.as_secs_f64()),
    ));
    rows.push(Row(
        "bulk import, peak memory MB",
        format!("{rss:.0}"),
        "-".into(),
        "-".into(),
    ));

    // 2. $all scan and verify.
    let t = Instant::now();
    let mut seen = 0u64;
    l.scan_all(AllStart::Start, Direction::Forwards, |b, h| {
        seen += b.to_event(*h).data.len() as u64 / EVENT_BYTES as u64;
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    let scan = t.elapsed();
    assert!(seen >= n / 2);
    let sq_scan = sqlite_scan(dir.path(), n);
    rows.push(Row(
        "$all scan, events/s",
        format!("{:.0}", rate(n, scan)),
        format!("{:.0}", rate(n, sq_scan)),
        format!("{:.2}×", sq_scan.as_secs_f64() / scan.as_secs_f64()),
    ));
    let t = Instant::now();
    let report = l.verify(None, |_, _| {}).unwrap();
    let verify = t.elapsed();
    assert!(report.problem.is_none());
    rows.push(Row(
        "verify, events/s",
        format!("{:.0}", rate(n, verify)),
        "-".into(),
        "-".into(),
    ));
    l.close();
    drop(l);

    // 3. 64 concurrent appenders, one event per durable append.
    // Short workloads run REPS times, interleaved with their baseline; medians are printed.
    let reps = env_u64("BENCH_REPS", 5);
    let per_task = env_u64("BENCH_APPENDS_PER_TASK", 400);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in 0..reps {
        let sub = dir.path().join(format!("conc-{r}"));
        std::fs::create_dir_all(&sub).unwrap();
        let (d, n) = concurrent(&sub, 64, per_task);
        ours.push(rate(n, d));
        theirs.push(sqlite_concurrent(&sub, 64, per_task / 4).0);
    }
    let (conc, sq_conc) = (percentile(ours, 0.5), percentile(theirs, 0.5));
    rows.push(Row(
        "64 appenders, events/s",
        format!("{conc:.0}"),
        format!("{sq_conc:.0}"),
        format!("{:.2}×", conc / sq_conc),
    ));

    // 4. One appender, one event per durable append: latency against one fsync.
    let (mut p50s, mut p99s, mut fsyncs) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..reps {
        let sub = dir.path().join(format!("single-{r}"));
        std::fs::create_dir_all(&sub).unwrap();
        let (p50, p99) = single_latency(&sub, 1000);
        p50s.push(p50);
        p99s.push(p99);
        fsyncs.push(fsync_p50(&sub, 300));
    }
    let (p50, p99, fsync) = (
        percentile(p50s, 0.5),
        percentile(p99s, 0.5),
        percentile(fsyncs, 0.5),
    );
    rows.push(Row(
        "1 appender, p50 / p99 µs",
        format!("{:.0} / {:.0}", p50, p99),
        format!("fsync p50 {:.0}", fsync),
        format!("{:.2} fsyncs", p50 / fsync),
    ));

    println!(
        "bulk: {n} events of ~{EVENT_BYTES} bytes over {STREAMS} streams, once; \
         the rest: medians of {reps} runs"
    );
    println!(
        "{:<30} {:>16} {:>16} {:>12}",
        "workload", "ledger", "sqlite", "ratio"
    );
    for Row(a, b, c, d) in rows {
        println!("{a:<30} {b:>16} {c:>16} {d:>12}");
    }
}

fn sqlite_open(path: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(60)).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS events(position INTEGER PRIMARY KEY, stream TEXT NOT NULL,
            revision INTEGER NOT NULL, id BLOB NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL,
            recorded INTEGER NOT NULL);
         CREATE UNIQUE INDEX IF NOT EXISTS by_stream ON events(stream, revision);",
    )
    .unwrap();
    c
}

fn sqlite_bulk(dir: &std::path::Path, n: u64) -> Duration {
    let mut c = sqlite_open(&dir.join("bulk.sqlite"));
    let mut next_rev = vec![0u64; STREAMS as usize];
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .unwrap();
            for _ in 0..IMPORT_BATCH.min((n - i) as usize) {
                let s = i.wrapping_mul(2_654_435_761) % STREAMS;
                let r = next_rev[s as usize];
                next_rev[s as usize] += 1;
                let id = (u128::from(i) + 1).to_be_bytes();
                st.execute(rusqlite::params![
                    (i + 1) as i64,
                    format!("community-{s}"),
                    r as i64,
                    &id[..],
                    "CommunityUpdated",
                    payload(i),
                    1i64
                ])
                .unwrap();
                i += 1;
            }
        }
        tx.commit().unwrap();
    }
    t.elapsed()
}

fn sqlite_scan(dir: &std::path::Path, n: u64) -> Duration {
    let c = sqlite_open(&dir.join("bulk.sqlite"));
    let t = Instant::now();
    let mut st = c
        .prepare("SELECT position, stream, revision, id, type, data, recorded FROM events ORDER BY position")
        .unwrap();
    let mut rows = st.query([]).unwrap();
    let mut seen = 0u64;
    while let Some(r) = rows.next().unwrap() {
        let stream: String = r.get(1).unwrap();
        let data: Vec<u8> = r.get(5).unwrap();
        seen += (stream.len() + data.len()) as u64 / EVENT_BYTES as u64;
    }
    assert!(seen >= n / 2);
    t.elapsed()
}

fn concurrent(dir: &std::path::Path, tasks: u64, per_task: u64) -> (Duration, u64) {
    let l = Ledger::open(dir.join("conc.redb"), Options::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|k| {
                let l = l.clone();
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let e = ProposedEvent {
                            data: payload(i),
                            ..ProposedEvent::json("Appended", &serde_json::Value::Null)
                        };
                        l.append(&format!("s{k}"), ExpectedRevision::Any, vec![e])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    let d = t.elapsed();
    l.close();
    (d, tasks * per_task)
}

fn sqlite_concurrent(dir: &std::path::Path, threads: u64, per_thread: u64) -> (f64, u64) {
    let path = dir.join("conc.sqlite");
    drop(sqlite_open(&path));
    let t = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|k| {
            let path = path.clone();
            std::thread::spawn(move || {
                let c = sqlite_open(&path);
                for i in 0..per_thread {
                    c.execute(
                        "INSERT INTO events(stream, revision, id, type, data, recorded)
                         VALUES (?1, ?2, randomblob(16), 'Appended', ?3, 1)",
                        rusqlite::params![format!("s{k}"), i as i64, payload(i)],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let n = threads * per_thread;
    (rate(n, t.elapsed()), n)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

fn single_latency(dir: &std::path::Path, n: u64) -> (f64, f64) {
    let l = Ledger::open(dir.join("single.redb"), Options::default()).unwrap();
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let e = ProposedEvent {
            data: payload(i),
            ..ProposedEvent::json("Appended", &serde_json::Value::Null)
        };
        let t = Instant::now();
        l.append_blocking("single", ExpectedRevision::Any, vec![e])
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    l.close();
    (percentile(lat.clone(), 0.5), percentile(lat, 0.99))
}

fn fsync_p50(dir: &std::path::Path, n: usize) -> f64 {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("fsync.bin")).unwrap();
    let block = vec![7u8; 4096];
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        f.write_all(&block).unwrap();
        let t = Instant::now();
        f.sync_data().unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    percentile(lat, 0.5)
}
