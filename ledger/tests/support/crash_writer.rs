//! Test support for `tests/crash.rs`: appends from several threads forever and prints each
//! acknowledged event as `position id` on its own line, until it is killed.

use ledger::{EventId, ExpectedRevision, Ledger, Options, ProposedEvent};
use std::io::Write;
use std::sync::{Arc, Mutex};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: crash_writer LEDGER ROUND");
    let round: u128 = args
        .next()
        .and_then(|r| r.parse().ok())
        .expect("round number");
    let ledger = Ledger::open(&path, Options::default()).expect("open");
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..8u128)
        .map(|t| {
            let (ledger, out) = (ledger.clone(), out.clone());
            std::thread::spawn(move || {
                for n in 0u128.. {
                    let id = EventId(uuid::Uuid::from_u128((round << 64) | (t << 32) | n));
                    let data = serde_json::json!({ "round": round as u64, "n": n as u64 });
                    let batch = (n % 4 + 1) as usize;
                    let events: Vec<_> = (0..batch)
                        .map(|k| {
                            let id = if k == 0 { id } else { EventId::new_random() };
                            ProposedEvent::json("Crash", &data).with_id(id)
                        })
                        .collect();
                    let r = ledger
                        .append_blocking(&format!("s{t}"), ExpectedRevision::Any, events)
                        .expect("append");
                    let first = r.position.expect("position") + 1 - batch as u64;
                    let mut o = out.lock().expect("stdout");
                    writeln!(o, "{first} {id}").expect("write");
                    o.flush().expect("flush");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
