//! `simulate`, `recover`, `plan` (every format, `record`, `done`) and `demo` through the binary.
//! The demo's outputs are compared with the copies kept in `tests/expected/demo/`
//! (`LIFELINE_BLESS=1` rewrites them, for review), and its Jython scripts must parse.

mod common;

use common::{lifeline, ok};
use serde_json::Value;
use std::path::Path;

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn checkpoint(l: &Path) -> Value {
    json(&ok(l, &["checkpoint", "--format", "json"]))
}

/// Every `.py` under `dir` parses as Python (the scripts keep to what Jython 2 and Python 3
/// both read; `execfile` and the wsadmin objects exist only at run time).
fn scripts_parse(dir: &Path) {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import ast, sys; ast.parse(open(sys.argv[1], encoding='utf-8').read())",
            ])
            .arg(&path)
            .output()
            .expect("python3 runs (CI installs it)");
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    assert!(n > 0, "no scripts in {}", dir.display());
}

#[test]
fn simulate_recover_plan_record_and_done() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("sim.redb");
    let sim = [
        "simulate",
        "--communities",
        "40",
        "--days",
        "6",
        "--seed",
        "3",
    ];
    let out = json(&ok(&l, &[&sim[..], &["--format", "json"]].concat()));
    assert!(out["events"].as_u64().unwrap() > 400, "{out}");
    assert!(
        out["from"].as_str().unwrap().starts_with("2026-10-01T00:"),
        "{out}"
    );

    // A second simulation into the same ledger is refused and writes nothing.
    let before = checkpoint(&l);
    let again = lifeline(&l, &sim);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("already holds"), "{}", again.stderr);
    assert_eq!(checkpoint(&l), before);

    let f = json(&ok(&l, &["recover", "--format", "json"]));
    assert_eq!(f["restores"], Value::Array(vec![]));

    ok(
        &l,
        &[
            "record",
            "DatabaseRestored",
            "--data",
            r#"{"database":"Files","backup":"files-2026-10-04"}"#,
        ],
    );
    let f = json(&ok(&l, &["recover", "--format", "json"]));
    assert_eq!(f["restores"][0]["database"], "Files", "{f}");
    assert_eq!(f["restores"][0]["whatIf"], false);
    // A change the restore lost, as the community's history tells it (not yet repaired).
    let lost = &f["lost"][0];
    let lost_in = |repaired: bool| -> usize {
        let community = lost["community"].as_str().unwrap();
        let history = ok(&l, &["history", community, "--format", "json"]);
        history
            .lines()
            .map(json)
            .filter(|e| e["position"] == lost["position"])
            .flat_map(|e| e["lost"].as_array().unwrap().clone())
            .filter(|x| x["database"] == "Files" && x["repaired"] == repaired)
            .count()
    };
    assert_eq!((lost_in(false), lost_in(true)), (1, 0), "{lost}");

    let p = json(&ok(&l, &["plan", "--format", "json"]));
    assert_eq!(p["converges"], true, "{p}");
    let steps = p["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| s["action"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..3],
        ["blockUsers", "pauseRetries", "clearQueueByApp"],
        "{kinds:?}"
    );
    assert!(kinds.contains(&"resumeRetries"));

    // wsadmin and html write several files: they need --out.
    let r = lifeline(&l, &["plan", "--format", "wsadmin"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--out"), "{}", r.stderr);
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    ok(&l, &["plan", "--format", "wsadmin", "--out", o]);
    scripts_parse(&out.join("wsadmin"));
    ok(&l, &["plan", "--format", "html", "--out", o]);
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        index.contains("Files was restored from files-2026-10-04 (the database as of position"),
        "{index}"
    );

    // Record the plan (once), then every step; the restore then counts as repaired.
    let rec = json(&ok(&l, &["plan", "record", "--format", "json"]));
    assert_eq!(rec["recorded"], true);
    let id = rec["plan"].as_str().unwrap().to_owned();
    assert_eq!(
        id,
        p["id"].as_str().unwrap(),
        "the recorded plan is the one shown"
    );
    let twice = ok(&l, &["plan", "record"]);
    assert!(twice.contains("already recorded"), "{twice}");
    let n = rec["steps"].as_u64().unwrap();
    // Step 1, then the rest but the last in one go (a range, recorded together).
    for steps in ["1".to_owned(), format!("2-{}", n - 1)] {
        let out = json(&ok(
            &l,
            &["plan", "done", &id[..12], &steps, "--format", "json"],
        ));
        assert_eq!(out["changedSince"], 0, "{out}");
    }
    let r = lifeline(&l, &["plan", "done", &id[..12], &format!("2,{n}")]);
    assert_eq!(r.code, 1, "step 2 again, with the last: {}", r.stderr);
    assert!(r.stderr.contains("nothing was appended"), "{}", r.stderr);
    // The plan under way is named above the plan made afresh, until its last step is done.
    let under_way = json(&ok(&l, &["plan", "--format", "json"]));
    assert_eq!(
        under_way["inProgress"],
        serde_json::json!([{"done": n - 1, "plan": id, "steps": n}]),
        "{under_way}"
    );
    let table = ok(&l, &["plan"]);
    assert!(
        table.starts_with(&format!(
            "Plan {} is recorded and under way: {} of {n} steps done",
            &id[..12],
            n - 1
        )),
        "{table}"
    );
    // A change recorded after the plan was made: the last step is still recorded, with a warning.
    ok(
        &l,
        &[
            "record",
            "BackupTaken",
            "--data",
            r#"{"database":"Blogs","label":"blogs-late"}"#,
        ],
    );
    let r = lifeline(&l, &["plan", "done", &id[..12], &n.to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("plan complete"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("1 change was recorded after this plan was made"),
        "{}",
        r.stderr
    );
    let r = lifeline(&l, &["plan", "done", &id[..12], "1"]);
    assert_eq!(r.code, 1, "a step done twice: {}", r.stderr);
    // Options of a plan's making do not go with recording it.
    let r = lifeline(&l, &["plan", "--at", "@5", "done", &id[..12], "1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("do not apply"), "{}", r.stderr);
    let r = lifeline(&l, &["plan", "--out", "somewhere", "record"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!std::path::Path::new("somewhere").exists());
    let r = lifeline(&l, &["plan", "done", &id[..12], &(n + 1).to_string()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let f = json(&ok(&l, &["recover", "--format", "json"]));
    assert_eq!(f["restores"], Value::Array(vec![]), "{f}");
    // The steps done changed the databases as the plan said: nothing differs, nothing is
    // lost, and there is nothing left to plan.
    for k in ["differences", "lost", "staleQueue"] {
        assert_eq!(f[k], Value::Array(vec![]), "{k}: {f}");
    }
    let again = json(&ok(&l, &["plan", "--format", "json"]));
    assert_eq!(again["steps"], Value::Array(vec![]), "{again}");
    assert_eq!(again.get("inProgress"), None, "{again}");
    assert_eq!((lost_in(false), lost_in(true)), (0, 1), "{lost}");
    assert_ne!(again["id"], p["id"]);
    let audit = ok(
        &l,
        &["audit", "--type", "RepairStepApplied", "--format", "json"],
    );
    assert_eq!(audit.lines().count() as u64, n);
    // Each step done says what it did: the first keeps users out, as the plan's first step.
    let first = json(audit.lines().next().unwrap());
    assert_eq!(
        first["what"],
        format!("step 1 of repair plan {} done: users kept out", &id[..12]),
        "{first}"
    );
    // A plan recorded without what its steps do (as earlier builds recorded them): its steps
    // count, and say that the databases are taken as they were.
    ok(
        &l,
        &[
            "record",
            "RepairPlanned",
            "--data",
            r#"{"plan":"0123456789abcdef","steps":1,"at":3}"#,
        ],
    );
    let r = lifeline(&l, &["plan", "done", "01234567", "1", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json(&r.stdout)["effect"], false, "{}", r.stdout);
    assert!(
        r.stderr.contains("recorded without what its steps do"),
        "{}",
        r.stderr
    );
}

/// The files under `dir`, by path, with their text.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// While `lifeline serve` holds the ledger, `recover`, `plan`, `audit`, `history` and `record`
/// with `--server` ask it: the same tables, JSON, CSV and files as from the ledger itself, and
/// `plan record`, `plan done` and the facts recorded land in the served ledger, with the
/// server's roles.
#[test]
fn a_served_ledger_is_planned_through_its_server() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("sim.redb");
    let sim: Vec<&str> = "simulate --communities 30 --days 5 --seed 5"
        .split(' ')
        .collect();
    ok(&l, &sim);
    ok(
        &l,
        &[
            "record",
            "DatabaseRestored",
            "--data",
            r#"{"database":"Files","backup":"files-2026-10-03"}"#,
        ],
    );
    let local = dir.path().join("local");
    for format in ["wsadmin", "runbook", "html", "json"] {
        ok(
            &l,
            &["plan", "--format", format, "--out", local.to_str().unwrap()],
        );
    }
    let local_json_text = ok(&l, &["plan", "--format", "json"]);
    let local_json = json(&local_json_text);
    let local_plan_table = ok(&l, &["plan"]);
    let at = ["--at", "@275", "--restore", "Forums=forums-2026-10-01"];
    let local_findings = [
        ok(&l, &["recover"]),
        ok(&l, &["recover", "--format", "json"]),
        ok(&l, &[&["recover", "--format", "json"][..], &at].concat()),
    ];
    assert!(local_findings[0].contains("Files was restored from files-2026-10-03"));
    assert!(
        local_findings[2].contains(r#""whatIf":true"#),
        "{}",
        local_findings[2]
    );
    let community = local_json["owners"][0]["name"].as_str().unwrap().to_owned();
    let reads: [Vec<&str>; 4] = [
        vec!["audit", "--limit", "40"],
        vec!["audit", "--type", "MembersAdded", "--format", "csv"],
        vec!["history", &community],
        vec!["history", &community, "--format", "json"],
    ];
    let local_reads: Vec<String> = reads.iter().map(|args| ok(&l, args)).collect();
    assert!(
        local_reads[2].contains("restored from"),
        "{}",
        local_reads[2]
    );

    let (read, write) = ("read-token-0123456789", "write-token-0123456789");
    let access = dir.path().join("access.json");
    let tokens = format!(
        r#"{{"tokens": [{{"token": "{read}", "role": "read"}}, {{"token": "{write}", "role": "write"}}]}}"#
    );
    std::fs::write(&access, tokens).unwrap();
    let (read_file, write_file) = (dir.path().join("read.tok"), dir.path().join("write.tok"));
    std::fs::write(&read_file, format!("{read}\n")).unwrap();
    std::fs::write(&write_file, write).unwrap();
    let served = common::Served::start(&l, &["--access", access.to_str().unwrap()]);
    let url = served.url.clone();

    // The ledger is the server's: opening it says so, and what to do instead.
    let r = lifeline(&l, &["plan", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("take --server URL"), "{}", r.stderr);

    let remote = dir.path().join("remote");
    let asked = |token: &Path, args: &[&str]| {
        let base = [
            "plan",
            "--server",
            &url,
            "--token-file",
            token.to_str().unwrap(),
        ];
        lifeline(&l, &[&base[..], args].concat())
    };
    for format in ["wsadmin", "runbook", "html", "json"] {
        let r = asked(
            &read_file,
            &["--format", format, "--out", remote.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
    }
    let (local_files, remote_files) = (tree(&local), tree(&remote));
    assert!(
        local_files.contains_key("wsadmin/Communities.py"),
        "{local_files:?}"
    );
    assert!(local_files.contains_key("index.html"));
    assert_eq!(
        local_files.keys().collect::<Vec<_>>(),
        remote_files.keys().collect::<Vec<_>>()
    );
    assert!(local_files == remote_files, "the server's files differ");
    let r = asked(&read_file, &["--format", "json"]);
    assert_eq!(r.stdout, local_json_text, "{}", r.stderr);
    let r = asked(&read_file, &["--format", "runbook"]);
    assert_eq!(r.stdout, local_files["runbook.md"]);
    // The tables are made here from what the server answers: the same, to the byte.
    assert_eq!(asked(&read_file, &[]).stdout, local_plan_table);
    let recovered = |args: &[&str]| {
        let base = [
            "recover",
            "--server",
            &url,
            "--token-file",
            read_file.to_str().unwrap(),
        ];
        let r = lifeline(&l, &[&base[..], args].concat());
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r.stdout
    };
    assert_eq!(recovered(&[]), local_findings[0]);
    assert_eq!(recovered(&["--format", "json"]), local_findings[1]);
    assert_eq!(
        recovered(&[&["--format", "json"][..], &at].concat()),
        local_findings[2]
    );
    for (args, local) in reads.iter().zip(&local_reads) {
        let server = [
            "--server",
            &url,
            "--token-file",
            read_file.to_str().unwrap(),
        ];
        let r = lifeline(&l, &[&args[..], &server].concat());
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(&r.stdout, local, "{args:?}");
    }

    // Without a token, or with one whose role may not write: refused, nothing recorded.
    let r = lifeline(&l, &["plan", "--server", &url, "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--token-file"), "{}", r.stderr);
    let r = asked(&read_file, &["record"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("needs write"), "{}", r.stderr);
    // Advice reads the backups beside the ledger.
    let r = lifeline(&l, &["recover", "--server", &url, "--advise"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    let rec = json(&asked(&write_file, &["record", "--format", "json"]).stdout);
    assert_eq!(rec["recorded"], true, "{rec}");
    assert_eq!(rec["plan"], local_json["id"]);
    let id = rec["plan"].as_str().unwrap()[..12].to_owned();
    let r = asked(&write_file, &["done", &id, "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("step 1 of "), "{}", r.stdout);
    let r = asked(&write_file, &["done", &id, "1"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("already recorded as done"),
        "{}",
        r.stderr
    );
    let r = asked(&write_file, &["done", "0123456789ab", "1"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    // The exit code is the command's own, as the server says it (a bad step is bad usage).
    let r = asked(&write_file, &["done", &id, "9999"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not 9999"), "{}", r.stderr);

    // A fact recorded through the server is checked as `record` checks it.
    let fact = |token: &Path, data: &str| {
        let server = ["--server", &url, "--token-file", token.to_str().unwrap()];
        lifeline(
            &l,
            &[&["record", "BackupTaken", "--data", data][..], &server].concat(),
        )
    };
    let late = r#"{"database":"Blogs","label":"blogs-late"}"#;
    let r = fact(&read_file, late);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("needs write"), "{}", r.stderr);
    let r = fact(&write_file, r#"{"database":"Blogs"}"#);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was recorded"), "{}", r.stderr);
    let r = fact(&write_file, late);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("recorded BackupTaken "),
        "{}",
        r.stdout
    );
    let r = asked(&write_file, &["done", &id, "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("1 change was recorded after this plan was made"),
        "{}",
        r.stderr
    );
    // The plan under way, named above the findings and the plan made afresh, as the ledger
    // itself names it (compared once the server is stopped).
    let under_way = [
        recovered(&[]),
        recovered(&["--format", "json"]),
        asked(&read_file, &[]).stdout,
        asked(&read_file, &["--format", "json"]).stdout,
    ];
    let status = served.stop();
    assert!(status.success(), "{status:?}");
    let local_under_way = [
        ok(&l, &["recover"]),
        ok(&l, &["recover", "--format", "json"]),
        ok(&l, &["plan"]),
        ok(&l, &["plan", "--format", "json"]),
    ];
    assert_eq!(under_way, local_under_way);
    assert!(
        under_way[0].starts_with(&format!("Plan {id} is recorded and under way: 2 of ")),
        "{}",
        under_way[0]
    );
    assert_eq!(json(&under_way[1])["inProgress"][0]["done"], 2);

    // Both landed in the ledger.
    let r = lifeline(&l, &["plan", "done", &id, "1"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("already recorded as done"),
        "{}",
        r.stderr
    );
    let r = lifeline(&l, &["plan", "--server", "ftp://x", "--format", "json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn what_if_restores_and_advice_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("sim.redb");
    let r = lifeline(&l, &["simulate", "--communities", "0"]);
    assert_eq!(r.code, 2, "no communities to simulate: {}", r.stderr);
    assert!(!l.exists(), "a refused simulation makes no ledger");
    ok(
        &l,
        &[
            "simulate",
            "--communities",
            "30",
            "--days",
            "5",
            "--seed",
            "9",
        ],
    );
    let before = checkpoint(&l);

    let f = json(&ok(
        &l,
        &[
            "recover",
            "--restore",
            "Files=files-2026-10-03",
            "--format",
            "json",
        ],
    ));
    assert_eq!(f["restores"][0]["whatIf"], true, "{f}");
    assert!(!f["lost"].as_array().unwrap().is_empty(), "{f}");

    let r = lifeline(&l, &["recover", "--restore", "Files=files-1999-01-01"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("files-2026-10-05, files-2026-10-04"),
        "{}",
        r.stderr
    );
    let r = lifeline(&l, &["recover", "--restore", "Filez=files-2026-10-03"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = lifeline(&l, &["recover", "--restore", "Files=blogs-2026-10-03"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = lifeline(
        &l,
        &["plan", "--restore", "Files=files-2026-10-03", "record"],
    );
    assert_eq!(r.code, 2, "a what-if plan is not recorded: {}", r.stderr);
    assert!(r.stderr.contains("cannot be recorded"), "{}", r.stderr);

    let advice = json(&ok(
        &l,
        &[
            "recover",
            "--advise",
            "--restore",
            "Files=files-2026-10-03",
            "--format",
            "json",
        ],
    ));
    let options = advice.as_array().unwrap();
    assert_eq!(options.len(), 3, "the three latest Files backups: {advice}");
    assert_eq!(options[0]["rank"], 1);
    // The most recent backup loses the least.
    assert_eq!(options[0]["restores"][0][1], "files-2026-10-05", "{advice}");
    assert_eq!(checkpoint(&l), before, "what-ifs append nothing");
}

fn compare(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected/demo")
        .join(name);
    if std::env::var_os("LIFELINE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{name} differs from tests/expected/demo/{name} at line {} (LIFELINE_BLESS=1 rewrites it):\n\
             expected: {:?}\ngot:      {:?}",
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
}

#[test]
fn the_demo_writes_every_report_the_same_way_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = out.to_str().unwrap();
    let args = [
        "demo",
        "--out",
        o,
        "--communities",
        "40",
        "--days",
        "5",
        "--seed",
        "7",
        "--rows",
        "3",
    ];
    let stdout = ok(&dir.path().join("unused.redb"), &args);
    compare("stdout.txt", &stdout.replace(o, "DIR"));
    for name in [
        "runbook.md",
        "owners.csv",
        "index.html",
        "Files_communityDifferences.html",
        "Activities_orphanedRemoteApplications.html",
        "wsadmin/Communities.py",
        "wsadmin/Files.py",
    ] {
        let text =
            std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        compare(name, &text);
    }
    scripts_parse(&out.join("wsadmin"));
    let plan = json(&std::fs::read_to_string(out.join("plan.json")).unwrap());
    assert_eq!(plan["converges"], true);
    // Run again: the same ledger, the same plan id.
    ok(&dir.path().join("unused.redb"), &args);
    let again = json(&std::fs::read_to_string(out.join("plan.json")).unwrap());
    assert_eq!(plan["id"], again["id"]);
}

/// A server with TLS whose certificate it signed itself is trusted with --ca-file, and only so.
#[test]
fn a_self_signed_server_is_asked_with_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("sim.redb");
    ok(
        &l,
        &[
            "simulate",
            "--communities",
            "10",
            "--days",
            "2",
            "--seed",
            "2",
        ],
    );
    let local = ok(&l, &["recover", "--format", "json"]);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    let (c, k) = (c.to_str().unwrap(), k.to_str().unwrap());
    let served = common::Served::start(&l, &["--tls-cert", c, "--tls-key", k]);
    let port = served.url.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}");
    let r = lifeline(&l, &["recover", "--server", &url, "--format", "json"]);
    assert_eq!(r.code, 1, "an unknown signer is not trusted: {}", r.stdout);
    assert!(r.stderr.contains("give it with --ca-file"), "{}", r.stderr);
    let r = lifeline(&l, &["recover", "--server", &url, "--ca-file", k]);
    assert_eq!(r.code, 2, "a key is not a certificate: {}", r.stderr);
    assert!(r.stderr.contains("holds no certificate"), "{}", r.stderr);
    let asked = ok(
        &l,
        &[
            "recover",
            "--server",
            &url,
            "--ca-file",
            c,
            "--format",
            "json",
        ],
    );
    assert_eq!(asked, local);
    let status = served.stop();
    assert!(status.success(), "{status:?}");
}
