//! Point-in-time replay, full rebuild, audit of one community and snapshot size on a generated
//! Connections history, with replay from the start run beside replay from snapshots.
//!
//!     cargo run --release --example domain_bench
//!
//! DOMAIN_EVENTS (default 1000000) and DOMAIN_COMMUNITIES (default 10000) set the size; the
//! issue's scale is 10000000 over 100000. DOMAIN_SNAPSHOT_EVERY (default events / 10); every one
//! is kept, as `lifeline snapshot --keep-all` keeps them.

#[path = "support.rs"]
mod support;
use ledger::{ContentType, EventId, ImportRecord, Ledger, Options, ProposedEvent, Timestamp};
use lifeline::domain::Point;
use projections::events::*;
use projections::{App, CommunityType, Database, DomainEvent, Role};
use std::time::Instant;
use support::{median, peak_mib};
use uuid::Uuid;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A history: communities with Files, Forum and Activities, then membership churn, visibility
/// and name changes, failed and retried deliveries, and nightly backups.
fn generate(events: u64, communities: u64, mut emit: impl FnMut(DomainEvent, Uuid)) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut id = 0u128;
    let mut next_id = || {
        id += 1;
        Uuid::from_u128(id)
    };
    let comm = |i: u64| Uuid::from_u128(u128::from(i) << 64 | 0xC0FFEE);
    let mut members: Vec<u64> = vec![1; communities as usize];
    let mut written = 0u64;
    for i in 0..communities {
        let c = comm(i);
        emit(
            DomainEvent::CommunityCreated(CommunityCreated {
                actor: Some(format!("owner{i}")),
                ..CommunityCreated::new(
                    c,
                    &format!("Community {i}"),
                    CommunityType::Public,
                    vec![format!("owner{i}")],
                )
            }),
            next_id(),
        );
        for (app, w) in [
            (App::Files, "Wf"),
            (App::Forum, "Wo"),
            (App::Activities, "Wa"),
        ] {
            let instance = format!("{w}{i}");
            emit(
                DomainEvent::WidgetAdded(WidgetAdded {
                    community: c,
                    instance: instance.clone(),
                    widget_def_id: app.widget_def_id().into(),
                    actor: None,
                }),
                next_id(),
            );
            emit(
                DomainEvent::RemoteAppProvisioned(RemoteAppProvisioned {
                    community: c,
                    app,
                    instance,
                    object_id: format!("{app}-{i}"),
                    actor: None,
                }),
                next_id(),
            );
        }
        written += 7;
    }
    let mut failed: Vec<(Uuid, Uuid)> = Vec::new();
    let mut night = 0u64;
    while written < events {
        let i = rng.below(communities);
        let c = comm(i);
        let ev = next_id();
        let who = Some(format!("user{}", rng.below(5000)));
        match rng.below(10) {
            0..=4 => {
                members[i as usize] += 1;
                emit(
                    DomainEvent::MembersAdded(Members {
                        community: c,
                        members: [(format!("m{}-{}", i, members[i as usize]), Role::Member)].into(),
                        actor: who,
                    }),
                    ev,
                );
            }
            5 | 6 if members[i as usize] > 1 => {
                emit(
                    DomainEvent::MembersRemoved(MembersRemoved {
                        community: c,
                        users: vec![format!("m{}-{}", i, members[i as usize])],
                        actor: who,
                    }),
                    ev,
                );
                members[i as usize] -= 1;
            }
            7 => emit(
                DomainEvent::VisibilityChanged(VisibilityChanged {
                    community: c,
                    community_type: [
                        CommunityType::Public,
                        CommunityType::PublicInviteOnly,
                        CommunityType::Private,
                    ][rng.below(3) as usize],
                    list_when_restricted: false,
                    external: false,
                    actor: who,
                }),
                ev,
            ),
            _ => emit(
                DomainEvent::CommunityUpdated(CommunityUpdated {
                    community: c,
                    name: Some(format!("Community {i} v{}", rng.below(100))),
                    actor: who,
                    ..Default::default()
                }),
                ev,
            ),
        }
        written += 1;
        if rng.below(50) == 0 {
            emit(
                DomainEvent::DeliveryFailed(Delivery {
                    community: c,
                    app: App::Files,
                    event: ev,
                }),
                next_id(),
            );
            failed.push((ev, c));
            written += 1;
        }
        if failed.len() > 20 {
            let (e, c) = failed.remove(0);
            emit(
                DomainEvent::DeliveryRetried(Delivery {
                    community: c,
                    app: App::Files,
                    event: e,
                }),
                next_id(),
            );
            written += 1;
        }
        if written / (events / 30).max(1) > night {
            night += 1;
            for d in [
                Database::Communities,
                Database::Files,
                Database::Forums,
                Database::Activities,
            ] {
                emit(
                    DomainEvent::BackupTaken(BackupTaken {
                        database: d,
                        label: format!("{}-night{night}", d.name()),
                        actor: None,
                    }),
                    next_id(),
                );
                written += 1;
            }
        }
    }
}

fn main() {
    let events = env_u64("DOMAIN_EVENTS", 1_000_000);
    let communities = env_u64("DOMAIN_COMMUNITIES", 10_000);
    let every = env_u64("DOMAIN_SNAPSHOT_EVERY", (events / 10).max(1));
    let dir = tempfile::tempdir_in(".").unwrap();
    let path = dir.path().join("domain.redb");
    let l = Ledger::open(
        &path,
        Options {
            cache_bytes: 16 << 20,
            ..Options::default()
        },
    )
    .unwrap();

    let t = Instant::now();
    let mut revisions = std::collections::HashMap::<String, u64>::new();
    let mut batch = Vec::with_capacity(100_000);
    generate(events, communities, |e, id| {
        let stream = e.stream();
        let rev = revisions.entry(stream.clone()).or_insert(0);
        let (ty, data, metadata) = e.encode();
        batch.push(ImportRecord {
            stream,
            revision: *rev,
            recorded: Timestamp(1),
            event: ProposedEvent {
                id: EventId(id),
                event_type: ty,
                content_type: ContentType::Json,
                data,
                metadata,
                occurred: None,
            },
        });
        *rev += 1;
        if batch.len() == 100_000 {
            l.import_blocking(std::mem::take(&mut batch)).unwrap();
        }
    });
    l.import_blocking(batch).unwrap();
    let head = l.head();
    println!(
        "generated and imported {head} events over {communities} communities in {:.1?}",
        t.elapsed()
    );

    // Full rebuild, as `replay --no-snapshots` makes it: the log streamed, decoded on one
    // thread and folded on another. Beside it, the baseline: every event read and decoded into
    // memory, then folded. The streamed one runs first, so the peak it leaves is its own.
    let t = Instant::now();
    let point = Point {
        position: head,
        occurred_by: None,
    };
    let streamed = lifeline::world::world_at(&l, &point, false).unwrap();
    let stream = t.elapsed();
    let stream_peak = peak_mib().unwrap_or(0);
    let t = Instant::now();
    let all = lifeline::domain::load(&l, head, None).unwrap().events;
    let load = t.elapsed();
    let t = Instant::now();
    let world = projections::World::replay(&all);
    let fold = t.elapsed();
    drop(all);
    let in_memory = load + fold;
    assert_eq!(streamed.world, world);
    println!(
        "full rebuild, streamed: {:.0} events/s ({:.1?}, peak memory so far {} MiB); {} communities",
        head as f64 / stream.as_secs_f64(),
        stream,
        stream_peak,
        world.actual.communities().len()
    );
    println!(
        "full rebuild, all in memory first: {:.0} events/s (read+decode {:.1?}, fold {:.1?}, peak memory so far {} MiB); streamed/in-memory time {:.2}",
        head as f64 / in_memory.as_secs_f64(),
        load,
        fold,
        peak_mib().unwrap_or(0),
        stream.as_secs_f64() / in_memory.as_secs_f64()
    );
    drop(world);

    // Snapshots.
    let t = Instant::now();
    let written = lifeline::world::build_snapshots(&l, every, lifeline::world::Keep::All, |_| {})
        .unwrap()
        .written;
    let snap_bytes: u64 = l.snapshots().unwrap().iter().map(|(_, b)| b).sum();
    l.close();
    drop(l);
    let ledger_bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "snapshots: {written} every {every} events in {:.1?}; {:.1} MB = {:.1}% of the ledger file ({:.1} MB, snapshots included)",
        t.elapsed(), snap_bytes as f64 / 1e6, 100.0 * snap_bytes as f64 / ledger_bytes as f64, ledger_bytes as f64 / 1e6
    );
    let l = Ledger::open(&path, Options::default()).unwrap();

    // Point-in-time replay at random positions, from snapshots and, beside it, from the start.
    let mut rng = Rng(42);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let p = 1 + rng.below(head);
        let point = Point {
            position: p,
            occurred_by: None,
        };
        let t = Instant::now();
        let a = lifeline::world::world_at(&l, &point, true).unwrap();
        with.push(t.elapsed());
        let t = Instant::now();
        let b = lifeline::world::world_at(&l, &point, false).unwrap();
        without.push(t.elapsed());
        assert_eq!(a.world, b.world, "position {p}");
    }
    let (w, wo) = (median(with), median(without));
    println!(
        "point-in-time replay (median of 5): {:.1?} from snapshots, {:.1?} from the start ({:.1}× faster)",
        w, wo, wo.as_secs_f64() / w.as_secs_f64()
    );

    // Audit of one community: index catch-up once, then queries.
    let t = Instant::now();
    let indexed = lifeline::audit::catch_up(&l).unwrap();
    println!("tag index: {indexed} events indexed in {:.1?}", t.elapsed());
    // As `lifeline audit --community` makes it (rows built, one read transaction); beside it,
    // the same positions each read in a transaction of its own.
    let (mut query, mut apart) = (Vec::new(), Vec::new());
    let mut found = 0;
    for _ in 0..20 {
        let c = Uuid::from_u128(u128::from(rng.below(communities)) << 64 | 0xC0FFEE);
        let args = lifeline::cli::AuditArgs {
            community: Some(c.to_string()),
            actor: None,
            event_type: None,
            database: None,
            since: None,
            until: None,
            limit: usize::MAX,
            remote: Default::default(),
        };
        let run_query = || {
            let t = Instant::now();
            let (rows, _) = lifeline::audit::query(&l, &args).unwrap();
            (t.elapsed(), rows.len())
        };
        let run_apart = || {
            let t = Instant::now();
            let positions =
                lifeline::audit::select(&l, &[format!("community:{c}")], 1, head).unwrap();
            let each: Vec<_> = positions
                .iter()
                .map(|p| l.event_at(*p).unwrap().unwrap())
                .collect();
            (t.elapsed(), each.len())
        };
        // Each goes first every other time, so neither always finds the pages the other read.
        let ((q, rows), (a, each)) = if query.len() % 2 == 0 {
            let q = run_query();
            (q, run_apart())
        } else {
            let a = run_apart();
            (run_query(), a)
        };
        assert_eq!(each, rows);
        query.push(q);
        apart.push(a);
        found += rows;
    }
    let (q, a) = (median(query), median(apart));
    println!(
        "audit of one community (median of 20): {:.2?} ({} events a community on average); its events read one transaction each, no rows built: {:.2?} ({:.2}×)",
        q,
        found / 20,
        a,
        a.as_secs_f64() / q.as_secs_f64()
    );

    // Point-in-time replay of one community, as `replay --community UUID` makes it (its own
    // events and the deployment-wide ones, from the tag index); beside it, the whole world from
    // snapshots at the same point, which must agree on that community.
    let (mut alone, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let c = Uuid::from_u128(u128::from(rng.below(communities)) << 64 | 0xC0FFEE);
        let point = Point {
            position: 1 + rng.below(head),
            occurred_by: None,
        };
        let t = Instant::now();
        let one = lifeline::world::community_world(&l, &point, c)
            .unwrap()
            .expect("the generator transfers no remote apps")
            .world;
        alone.push(t.elapsed());
        let t = Instant::now();
        let all = lifeline::world::world_at(&l, &point, true).unwrap().world;
        whole.push(t.elapsed());
        for d in projections::Database::ALL {
            for (a, b) in [(&one.actual, &all.actual), (&one.intended, &all.intended)] {
                let (a, b) = (
                    lifeline::replay::filtered(a.db(d), Some(c)),
                    lifeline::replay::filtered(b.db(d), Some(c)),
                );
                assert!(a == b, "community {c} at {}", point.position);
            }
        }
    }
    let (one, all) = (median(alone), median(whole));
    println!(
        "point-in-time replay of one community (median of 5): {:.2?}; the whole world from snapshots at the same points: {:.1?} ({:.0}×)",
        one,
        all,
        all.as_secs_f64() / one.as_secs_f64()
    );
}
