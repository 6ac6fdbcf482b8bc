//! The KurrentDB protocol's cost, measured through the official Rust client (`kurrentdb`)
//! against `lifeline serve` on loopback, beside the same work done in-process on the ledger:
//!
//! - appends: TASKS (32) concurrent tasks append one event per call for BENCH_SECONDS (10);
//!   events/s, latency percentiles, and the CPU time this process spent per event (client
//!   and server together; with GRPC_URL, the client's alone);
//! - a `$all` read of everything written, forwards: events/s.
//!
//! Under each append run, the writer's own figures (`Ledger::writer_stats`): commits a second,
//! appends a commit, the share of the run it spent committing, and a commit's time with the
//! write-ahead log's part of it. Through the client, the writer commits fewer appends at a time
//! and waits more: the difference is time the appends spend outside the ledger.
//!
//! Each is run RUNS (3) times, alternating client and in-process, and the medians are printed
//! with their ratio (the machine is shared: the ratio is the figure to quote). With GRPC_URL
//! set, the appends go to that server instead (e.g. `lifeline serve` in its own process) and
//! the read is left out.
//!
//! With GRPC_URL, SERVER_PID names the server's process: each client run then also prints
//! the CPU time that process spent per event (from /proc, Linux), so that the client's and
//! the server's shares can be told apart.
//!
//! Beside them, in the same rounds, the same client appends to a server that stores nothing
//! (`Noop`: the same listener, HTTP/2 stack and tonic, every append answered at once): the
//! ceiling the client and the protocol leave on this machine, whatever the server does.
//!
//!     cargo run --release --example grpc_bench

use kurrentdb::{AppendToStreamOptions, Client, ClientSettings, EventData, ReadAllOptions};
use ledger::{AllStart, Direction, ExpectedRevision, Ledger, Options, ProposedEvent, WriterStats};
use lifeline::grpc::proto::event_store::client::streams as wire;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

struct Appends {
    events_per_s: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time this process spent (every thread, user and system) per event appended.
    cpu_per_event: Duration,
    /// How long the run took, its last calls answered.
    took: Duration,
}

/// CPU time this process has used so far, every thread, user and system.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given and reads nothing else.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |v: libc::timeval| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000);
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU time process `pid` has used so far (user and system, from /proc; Linux only).
fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf reads a configuration value and touches no memory of ours.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    Some(Duration::from_secs_f64(
        ticks as f64 / per_second.max(1) as f64,
    ))
}

/// One run's line: who appended ("client" or "ledger"), events/s and latencies.
fn show(run: usize, who: &str, a: &Appends) {
    println!(
        "  run {run}: {who}  {:>9.0} events/s  p50 {:>6.2} ms  p99 {:>6.2} ms  CPU {:>5.1} µs/event",
        a.events_per_s,
        a.p50.as_secs_f64() * 1e3,
        a.p99.as_secs_f64() * 1e3,
        a.cpu_per_event.as_secs_f64() * 1e6
    );
}

/// How the writer of the ledger that took a run's appends spent it (`WriterStats::summary`).
/// Where it waited most of the run, the appends were elsewhere (on the wire, in the stacks).
fn show_writer(w: &WriterStats, a: &Appends) {
    if w.commits == 0 {
        return; // another server took the appends (GRPC_URL)
    }
    println!("         writer: {}", w.summary(a.took));
}

/// Task `t`'s `n`-th append through the official client.
async fn through_client(c: Client, t: usize, n: usize) {
    let e = EventData::json("Forwarded", &payload(t, n)).unwrap();
    c.append_to_stream(format!("bench-{t}"), &AppendToStreamOptions::default(), e)
        .await
        .unwrap();
}

fn payload(task: usize, n: usize) -> serde_json::Value {
    serde_json::json!({ "task": task, "n": n, "note": "a lifecycle event forwarded from Connections" })
}

/// TASKS tasks append one event per call until `seconds` pass; `append` makes one call.
async fn appends<F, Fut>(tasks: usize, seconds: u64, append: F) -> Appends
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let cpu = process_cpu();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (stop, append) = (stop.clone(), append.clone());
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                append(t, n).await;
                latencies.push(began.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let took = start.elapsed();
    let cpu = process_cpu() - cpu;
    all.sort();
    Appends {
        cpu_per_event: cpu / all.len().max(1) as u32,
        events_per_s: all.len() as f64 / took.as_secs_f64(),
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        took,
    }
}

/// A Streams service that keeps nothing: each append is read whole and answered as written at
/// the next position. Everything else is unimplemented.
struct Noop(std::sync::atomic::AtomicU64);

type Nothing<T> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl wire::streams_server::Streams for Noop {
    type ReadStream = Nothing<wire::ReadResp>;
    type BatchAppendStream = Nothing<wire::BatchAppendResp>;

    async fn read(
        &self,
        _: tonic::Request<wire::ReadReq>,
    ) -> Result<tonic::Response<Self::ReadStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not kept"))
    }

    async fn append(
        &self,
        req: tonic::Request<tonic::Streaming<wire::AppendReq>>,
    ) -> Result<tonic::Response<wire::AppendResp>, tonic::Status> {
        use wire::append_resp::{success, Position, Result as Outcome, Success};
        let mut messages = req.into_inner();
        let mut n = 0;
        while messages.message().await?.is_some() {
            n += 1;
        }
        let at = self.0.fetch_add(n, Ordering::Relaxed) + n;
        Ok(tonic::Response::new(wire::AppendResp {
            result: Some(Outcome::Success(Success {
                current_revision_option: Some(success::CurrentRevisionOption::CurrentRevision(at)),
                position_option: Some(success::PositionOption::Position(Position {
                    commit_position: at,
                    prepare_position: at,
                })),
            })),
        }))
    }

    async fn delete(
        &self,
        _: tonic::Request<wire::DeleteReq>,
    ) -> Result<tonic::Response<wire::DeleteResp>, tonic::Status> {
        Err(tonic::Status::unimplemented("not kept"))
    }

    async fn tombstone(
        &self,
        _: tonic::Request<wire::TombstoneReq>,
    ) -> Result<tonic::Response<wire::TombstoneResp>, tonic::Status> {
        Err(tonic::Status::unimplemented("not kept"))
    }

    async fn batch_append(
        &self,
        _: tonic::Request<tonic::Streaming<wire::BatchAppendReq>>,
    ) -> Result<tonic::Response<Self::BatchAppendStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not kept"))
    }
}

/// Serves [`Noop`] on a loopback port as `lifeline serve` serves (`net::serve`); its address.
async fn serve_noop() -> std::net::SocketAddr {
    let server = wire::streams_server::StreamsServer::new(Noop(Default::default()));
    let app = axum::Router::new().route_service(&lifeline::grpc::path(&server), server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lifeline::net::serve(
        listener,
        app,
        None,
        std::future::pending(),
    ));
    addr
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let tasks: usize = env("TASKS", 32);
    let seconds: u64 = env("BENCH_SECONDS", 10);
    let runs: usize = env("RUNS", 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir_in(".").unwrap();

    // The server, as `lifeline serve` runs it, on its own ledger.
    let served =
        Arc::new(Ledger::open(dir.path().join("served.redb"), Options::default()).unwrap());
    let args = lifeline::cli::ServeArgs::on("127.0.0.1:0".parse().unwrap());
    let running = rt
        .block_on(lifeline::serve::start(served.clone(), &args))
        .unwrap();
    // GRPC_URL: drive another server instead (its own process: its CPU is then its own).
    let url = std::env::var("GRPC_URL")
        .unwrap_or_else(|_| format!("kurrentdb://127.0.0.1:{}?tls=false", running.addr.port()));
    // CLIENTS (1) connections, the tasks spread over them.
    let clients: usize = env("CLIENTS", 1);
    let pool: Vec<Client> = rt.block_on(async {
        (0..clients.max(1))
            .map(|_| Client::new(url.parse::<ClientSettings>().unwrap()).unwrap())
            .collect()
    });
    let client = pool[0].clone();
    let noop_addr = rt.block_on(serve_noop());
    let noop: Client = rt.block_on(async {
        let url = format!("kurrentdb://127.0.0.1:{}?tls=false", noop_addr.port());
        Client::new(url.parse::<ClientSettings>().unwrap()).unwrap()
    });
    // The baseline: the same calls on a ledger in this process.
    let direct =
        Arc::new(Ledger::open(dir.path().join("direct.redb"), Options::default()).unwrap());

    println!("{tasks} tasks appending one event per call for {seconds} s, {runs} runs each");
    let server_pid: Option<u32> = std::env::var("SERVER_PID")
        .ok()
        .and_then(|p| p.parse().ok());
    let (mut through, mut inproc, mut ceiling) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let pool = pool.clone();
        let before = served.writer_stats();
        let server_before = server_pid.and_then(cpu_of);
        let a = rt.block_on(appends(tasks, seconds, move |t, n| {
            through_client(pool[t % pool.len()].clone(), t, n)
        }));
        show(run, "client", &a);
        show_writer(&served.writer_stats().since(&before), &a);
        if let (Some(b), Some(e)) = (server_before, server_pid.and_then(cpu_of)) {
            let events = a.events_per_s * a.took.as_secs_f64();
            println!(
                "         server (pid {}): CPU {:.1} µs/event",
                server_pid.unwrap_or_default(),
                (e - b).as_secs_f64() * 1e6 / events.max(1.0)
            );
        }
        through.push(a);
        let l = direct.clone();
        let before = direct.writer_stats();
        let b = rt.block_on(appends(tasks, seconds, move |t, n| {
            let l = l.clone();
            async move {
                let e = ProposedEvent::json("Forwarded", &payload(t, n));
                l.append(&format!("bench-{t}"), ExpectedRevision::Any, vec![e])
                    .await
                    .unwrap();
            }
        }));
        show(run, "ledger", &b);
        show_writer(&direct.writer_stats().since(&before), &b);
        inproc.push(b);
        let c = noop.clone();
        let n = rt.block_on(appends(tasks, seconds, move |t, n| {
            through_client(c.clone(), t, n)
        }));
        show(run, "noop  ", &n);
        ceiling.push(n);
    }
    let med = |v: &[Appends], f: fn(&Appends) -> f64| median(v.iter().map(f).collect());
    let (c_rate, l_rate) = (
        med(&through, |a| a.events_per_s),
        med(&inproc, |a| a.events_per_s),
    );
    let (c_p99, l_p99) = (
        med(&through, |a| a.p99.as_secs_f64() * 1e3),
        med(&inproc, |a| a.p99.as_secs_f64() * 1e3),
    );
    println!(
        "appends, medians: client {c_rate:.0} events/s (p99 {c_p99:.2} ms); in-process {l_rate:.0} events/s (p99 {l_p99:.2} ms); client/in-process {:.2}",
        c_rate / l_rate
    );
    let n_rate = med(&ceiling, |a| a.events_per_s);
    println!(
        "the same client against a server that stores nothing: {n_rate:.0} events/s (median); client/that ceiling {:.2}",
        c_rate / n_rate
    );

    if std::env::var("GRPC_URL").is_ok() {
        rt.block_on(running.stop());
        return;
    }
    let total = served.head();
    println!("$all read forwards of {total} events, {runs} runs each");
    let (mut c_reads, mut l_reads) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let began = Instant::now();
        let n = rt.block_on(async {
            let mut s = client.read_all(&ReadAllOptions::default()).await.unwrap();
            let mut n = 0u64;
            while s.next().await.unwrap().is_some() {
                n += 1;
            }
            n
        });
        let c = n as f64 / began.elapsed().as_secs_f64();
        assert_eq!(n, total, "the client read every event");
        let began = Instant::now();
        let mut m = 0u64;
        let mut start = AllStart::Start;
        loop {
            let page = served
                .read_all(start, Direction::Forwards, 512, None)
                .unwrap();
            m += page.events.len() as u64;
            match (page.exhausted, page.last_considered) {
                (false, Some(p)) => start = AllStart::Position(p + 1),
                _ => break,
            }
        }
        let l = m as f64 / began.elapsed().as_secs_f64();
        println!("  run {run}: client {c:>10.0} events/s; ledger {l:>10.0} events/s");
        c_reads.push(c);
        l_reads.push(l);
    }
    let (c, l) = (median(c_reads), median(l_reads));
    println!(
        "$all read, medians: client {c:.0} events/s; in-process {l:.0} events/s; client/in-process {:.2}",
        c / l
    );
    rt.block_on(running.stop());
}
