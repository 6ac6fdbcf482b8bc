//! Running the `lifeline` binary from the end-to-end tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `lifeline --ledger LEDGER ARGS…`, with no LIFELINE_LEDGER from the environment.
pub fn lifeline(ledger: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .arg("--ledger")
        .arg(ledger)
        .args(args)
        .env_remove("LIFELINE_LEDGER")
        .output()
        .expect("run lifeline");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs it, requires success, and returns standard output.
pub fn ok(ledger: &Path, args: &[&str]) -> String {
    let r = lifeline(ledger, args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r.stdout
}

/// `lifeline audit ARGS… --format json`, one row per event, oldest first.
pub fn audit(ledger: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    ok(ledger, &all)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit row is JSON"))
        .collect()
}

/// Records `e` in `l` as `lifeline record --force` would (no checks); returns its event id.
pub fn record(l: &ledger::Ledger, e: projections::DomainEvent) -> uuid::Uuid {
    let id = ledger::EventId::new_random();
    let p = lifeline::domain::proposed(&e, id, None);
    l.append_blocking(&e.stream(), ledger::ExpectedRevision::Any, vec![p])
        .unwrap();
    id.0
}

/// A rename of `community` whose delivery to Forums failed: it waits in the retry queue.
/// Returns the rename's event id.
pub fn rename_not_delivered_to_forums(l: &ledger::Ledger, community: uuid::Uuid) -> uuid::Uuid {
    use projections::events::{CommunityUpdated, Delivery};
    use projections::DomainEvent;
    let update = record(
        l,
        DomainEvent::CommunityUpdated(CommunityUpdated {
            community,
            name: Some("Renamed while Forums was away".into()),
            ..Default::default()
        }),
    );
    record(
        l,
        DomainEvent::DeliveryFailed(Delivery {
            community,
            app: projections::App::Forum,
            event: update,
        }),
    );
    update
}

/// A `lifeline serve` of `ledger` on a free loopback port, stopped (SIGTERM, then waited for)
/// when dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Served {
    pub fn start(ledger: &Path, extra: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_lifeline"))
            .arg("--ledger")
            .arg(ledger)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("LIFELINE_LEDGER")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run lifeline serve");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        // "lifeline: serving on 127.0.0.1:PORT: …"
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let rest = line.split_once("serving on ")?.1;
                Some(rest.split_once(": ")?.0.to_owned())
            })
            .expect("the server did not start");
        // What it says later is read (and dropped), so that its writes never fail.
        std::thread::spawn(move || lines.for_each(drop));
        Served {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// Stops it as a service manager would (SIGTERM) and waits until it has exited (the ledger
    /// closed); fails the test if it is still running 20 seconds later.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.stop_now()
    }

    fn stop_now(&mut self) -> std::process::ExitStatus {
        let pid = i32::try_from(self.child.id()).unwrap();
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Not while a failing test unwinds: a second panic would abort the run.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
