//! `import atom` on a generated snapshot directory: ATOM_COMMUNITIES (default 100000)
//! communities in pages of 100 entries, and a members feed of each. Prints the time to import
//! into an empty ledger beside the time to only read and parse the same files (the baseline),
//! then imports again (nothing to append).
//!
//!     cargo run --release --example atom_import_bench

use ledger::{Ledger, Options};
use std::fmt::Write;
use std::time::Instant;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const PAGE: usize = 100;

fn community(i: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x5EED_0000_0000_4000_8000_0000_0000_0000 | i as u128)
}

fn entry(i: usize) -> String {
    let u = community(i);
    let t = ["public", "publicInviteOnly", "private"][i % 3];
    format!(
        "<entry><snx:communityUuid>{u}</snx:communityUuid><title type=\"text\">Community {i}</title>\
         <published>2026-01-01T00:00:00Z</published><updated>2026-02-01T00:00:00Z</updated>\
         <author><name>Owner {i}</name><snx:userid>owner{i}</snx:userid></author>\
         <link rel=\"http://www.ibm.com/xmlns/prod/sn/member-list\" href=\"https://example.com/communities/service/atom/community/members?communityUuid={u}\"/>\
         <snx:communityType>{t}</snx:communityType><snx:preModeration>false</snx:preModeration>\
         <snx:postModeration>false</snx:postModeration><snx:communityTheme snx:uuid=\"default\"/></entry>"
    )
}

fn members(i: usize) -> String {
    let u = community(i);
    let mut s = format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">\
         <id>https://example.com/communities/service/atom/community/members?communityUuid={u}</id>\
         <snx:communityLastMod>1</snx:communityLastMod>"
    );
    for m in 0..5 {
        let (who, role) = if m == 0 {
            (format!("owner{i}"), "owner")
        } else {
            (format!("user{}", (i * 7 + m) % 50_000), "member")
        };
        let _ = write!(
            s,
            "<entry><contributor><snx:userid>{who}</snx:userid></contributor><snx:role>{role}</snx:role>\
             <published>2026-01-01T00:00:00Z</published></entry>"
        );
    }
    s.push_str("</feed>");
    s
}

fn main() {
    let n: usize = env("ATOM_COMMUNITIES", 100_000);
    let tmp = tempfile::tempdir_in(".").unwrap();
    let dir = tmp.path().join("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    for p in 0..n.div_ceil(PAGE) {
        let mut feed = String::from(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">",
        );
        for i in p * PAGE..((p + 1) * PAGE).min(n) {
            feed.push_str(&entry(i));
        }
        feed.push_str("</feed>");
        std::fs::write(dir.join(format!("all-{p:05}.xml")), feed).unwrap();
    }
    for i in 0..n {
        std::fs::write(dir.join(format!("members-{i:06}.xml")), members(i)).unwrap();
    }
    println!(
        "wrote {} pages and {n} members feeds in {:.1?}",
        n.div_ceil(PAGE),
        t.elapsed()
    );

    // Baseline: read and parse every file, nothing else.
    let t = Instant::now();
    let mut docs = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let body = std::fs::read(e.unwrap().path()).unwrap();
        lifeline::atom_api::document(&body).unwrap();
        docs += 1;
    }
    let parse = t.elapsed();
    println!("baseline: read and parse {docs} files in {parse:.1?}");

    let l = Ledger::open(tmp.path().join("import.redb"), Options::default()).unwrap();
    let t = Instant::now();
    lifeline::atom_import::import_atom(&l, &dir, false, lifeline::cli::Format::Json).unwrap();
    let import = t.elapsed();
    drop(l);
    let l = Ledger::open(tmp.path().join("import.redb"), Options::default()).unwrap();
    let t = Instant::now();
    lifeline::atom_import::import_atom(&l, &dir, false, lifeline::cli::Format::Json).unwrap();
    let again = t.elapsed();
    println!(
        "import of {n} communities into an empty ledger: {import:.1?} ({:.2}× the baseline); again, with nothing new: {again:.1?}",
        import.as_secs_f64() / parse.as_secs_f64()
    );
}
