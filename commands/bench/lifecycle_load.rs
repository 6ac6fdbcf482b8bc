//! Load on the lifecycle handler over loopback: SENDERS (32) concurrent senders POST lifecycle
//! entries for LOAD_SECONDS (30); prints requests/s and latency percentiles, then checks that every
//! acknowledged entry's events are in the ledger. The baseline beside it is the same number of
//! appends made directly to the ledger by as many threads, without HTTP or checks.
//! RATE_LIMIT sets the server's per-address limit (0: none; default as `serve`).
//!
//!     cargo run --release --example lifecycle_load

use ledger::{ExpectedRevision, Ledger, Options, ProposedEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Members per community before a sender moves to its next community.
const PER_COMMUNITY: usize = 40;

fn entry(sender: usize, k: usize) -> String {
    let community = uuid::Uuid::from_u128(((sender as u128) << 64) | (k / PER_COMMUNITY) as u128);
    let members: Vec<String> = (0..=k % PER_COMMUNITY).map(|m| format!("m{m}")).collect();
    format!(
        "<entry xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">\
         <category term=\"community.members.added\" scheme=\"http://www.ibm.com/prod/sn/type/event\"/>\
         <author><snx:userid>owner{sender}</snx:userid></author>\
         <snx:container id=\"{community}\" name=\"Load {sender}-{k}\">\
         <snx:property name=\"communityType\">public</snx:property>\
         <snx:property name=\"owners\">owner{sender}</snx:property>\
         <snx:property name=\"members\">{}</snx:property></snx:container></entry>",
        members.join(",")
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let senders: usize = env("SENDERS", 32);
    let seconds: u64 = env("LOAD_SECONDS", 30);
    let dir = tempfile::tempdir_in(".").unwrap();
    let l = Arc::new(Ledger::open(dir.path().join("load.redb"), Options::default()).unwrap());
    // The server as `lifeline serve` runs it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let args = lifeline::cli::ServeArgs {
        rate_limit: env("RATE_LIMIT", 50_000),
        ..lifeline::cli::ServeArgs::on("127.0.0.1:0".parse().unwrap())
    };
    let running = rt
        .block_on(lifeline::serve::start(l.clone(), &args))
        .unwrap();
    let addr = running.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let url = format!("http://{addr}/lifecycle");
                let (mut lat, mut acked, mut refused) = (Vec::new(), 0u64, 0u64);
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = entry(s, k);
                    let t = Instant::now();
                    let mut r = agent.post(&url).send(body.as_bytes()).unwrap();
                    // Read the answer, as Communities does (and so the connection is reused).
                    let _ = r.body_mut().read_to_string();
                    lat.push(t.elapsed());
                    if r.status() == 200 {
                        acked += 1;
                    } else {
                        refused += 1;
                    }
                    k += 1;
                }
                (lat, acked, refused)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let (mut acked, mut refused) = (0, 0);
    for t in threads {
        let (l, a, r) = t.join().unwrap();
        lat.extend(l);
        acked += a;
        refused += r;
    }
    let elapsed = start.elapsed();
    lat.sort();
    let rate = lat.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{senders} senders for {elapsed:.1?}: {} requests, {rate:.0} requests/s; {acked} acknowledged, {refused} refused",
        lat.len()
    );
    println!(
        "latency p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    // Every acknowledged entry added one member (and the first of each community created it).
    let events = lifeline::domain::load(&l, l.head(), None).unwrap().events;
    let added = events
        .iter()
        .filter(|r| matches!(r.event, projections::DomainEvent::MembersAdded(_)))
        .count() as u64;
    let created = events
        .iter()
        .filter(|r| matches!(r.event, projections::DomainEvent::CommunityCreated(_)))
        .count() as u64;
    assert_eq!(
        added + created,
        acked,
        "every acknowledged entry is in the ledger"
    );
    println!("ledger: {created} communities created and {added} member additions = {acked} acknowledged entries");
    println!("  writer: {}", l.writer_stats().summary(elapsed));

    // Baseline: the same number of appends, straight into a ledger, from as many threads.
    let n = acked.max(1);
    let base = Arc::new(Ledger::open(dir.path().join("base.redb"), Options::default()).unwrap());
    let t = Instant::now();
    let per = n / senders as u64 + 1;
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let base = base.clone();
            std::thread::spawn(move || {
                for k in 0..per {
                    let e = ProposedEvent::json("Load", &serde_json::json!({ "k": k }));
                    base.append_blocking(&format!("load-{s}"), ExpectedRevision::Any, vec![e])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let took = t.elapsed();
    let base_rate = (per * senders as u64) as f64 / took.as_secs_f64();
    println!(
        "baseline: {} direct appends from {senders} threads at {base_rate:.0}/s; the handler runs at {:.2}× of it",
        per * senders as u64,
        rate / base_rate
    );
    println!("  writer: {}", base.writer_stats().summary(took));
}
