//! The `lifeline` program: the only part of Lifeline that talks to the world (files,
//! terminals; later sockets). One module per user-facing operation.

pub mod access;
pub mod advise;
pub mod api;
pub mod atom_api;
pub mod atom_entry;
pub mod atom_import;
pub mod audit;
pub mod cli;
pub mod demo;
pub mod domain;
pub mod exit;
pub mod grpc;
pub mod heap;
pub mod history;
pub mod integrity;
pub mod jsonl;
pub mod net;
pub mod output;
pub mod plan;
pub mod progress;
pub mod read;
pub mod record;
pub mod recover;
pub mod remote;
pub mod replay;
pub mod reports;
pub mod runbook;
pub mod scripts;
pub mod serve;
pub mod simulate;
pub mod sync;
pub mod time_fmt;
pub mod transfer;
pub mod world;
pub mod write;

use anyhow::Context;
use cli::{Cli, Command};
use indicatif::DecimalBytes;
use std::path::Path;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Audit(a) => {
            use cli::FormatArg::{Csv, Json, Table};
            if !matches!(cli.format, Table | Json | Csv) {
                return Err(exit::with_code(
                    exit::USAGE,
                    "`lifeline audit` prints table, json or csv",
                ));
            }
            if a.remote.server.is_some() {
                return remote::audit(a, cli.format);
            }
            return audit::audit(&open(&cli.ledger)?, a, cli.format);
        }
        Command::Plan(a) if a.remote.server.is_some() => return remote::plan(a, cli.format),
        Command::Plan(a) => {
            let _heap = heap::Prefault::start();
            return plan::plan(&open(&cli.ledger)?, a, cli.format);
        }
        Command::Demo(a) => return demo::demo(a),
        Command::Serve(a) => return serve::serve(&cli.ledger, a),
        _ => {}
    }
    let format = match cli.format {
        cli::FormatArg::Table => cli::Format::Table,
        cli::FormatArg::Json => cli::Format::Json,
        other => {
            let name = format!("{other:?}").to_lowercase();
            return Err(exit::with_code(
                exit::USAGE,
                format!(
                    "--format {name} is for `lifeline audit` (csv) and `lifeline plan`; this \
                     command prints table or json"
                ),
            ));
        }
    };
    match cli.command {
        Command::Init => write::init(&cli.ledger, format),
        Command::Append(a) => write::append(&open(&cli.ledger)?, &a, format),
        Command::Read(a) => read::read(&open(&cli.ledger)?, &a, format),
        Command::Verify(a) => integrity::verify(&cli.ledger, &a, format),
        Command::Checkpoint(a) => integrity::checkpoint(&open(&cli.ledger)?, &a, format),
        Command::Prove(a) => integrity::prove(&cli.ledger, &a, format),
        Command::VerifyProof(a) => integrity::verify_proof(&a, format),
        Command::Export(a) => transfer::export(&open(&cli.ledger)?, &a),
        Command::Import(a) => match (&a.source, &a.file) {
            (Some(_), Some(file)) => Err(exit::with_code(
                exit::USAGE,
                format!(
                    "import either a JSON Lines file or `atom DIR`, not both ({} was given too)",
                    file.display()
                ),
            )),
            (Some(cli::ImportSource::Atom { dir, complete }), None) => {
                atom_import::import_atom(&open(&cli.ledger)?, dir, *complete, format)
            }
            (None, Some(file)) => {
                let options = ledger::Options {
                    cache_bytes: transfer::IMPORT_CACHE_BYTES,
                    ..ledger::Options::default()
                };
                transfer::import(&open_with(&cli.ledger, options)?, file, format)
            }
            (None, None) => Err(exit::with_code(
                exit::USAGE,
                "import what? a JSON Lines FILE, or `import atom DIR`",
            )),
        },
        Command::Record(a) if a.remote.server.is_some() => remote::record(&a, format),
        Command::Record(a) => record::record(&open(&cli.ledger)?, &a, format),
        Command::Replay(a) => {
            let _heap = heap::Prefault::start();
            replay::replay(&open(&cli.ledger)?, &a, format)
        }
        Command::Snapshot(a) => snapshot(&open(&cli.ledger)?, &a, format),
        Command::Compact => compact(&cli.ledger, format),
        Command::Recover(a) if a.remote.server.is_some() => remote::recover(&a, format),
        Command::Recover(a) => {
            let _heap = heap::Prefault::start();
            recover::recover(&open(&cli.ledger)?, &a, format)
        }
        Command::Sync(a) => sync::sync(&open(&cli.ledger)?, &a, format),
        Command::Simulate(a) => {
            let l = open_or_create(&cli.ledger, ledger::Options::default(), "opening")?;
            simulate::simulate(&l, &a, format)
        }
        Command::Audit(_) | Command::Plan(_) | Command::Demo(_) | Command::Serve(_) => {
            unreachable!("answered above")
        }
        Command::History(a) if a.remote.server.is_some() => remote::history(&a, format),
        Command::History(a) => history::history(&open(&cli.ledger)?, &a, format),
    }
}

/// Opens an existing ledger; a missing file is an error that says how to make one.
pub fn open(path: &Path) -> anyhow::Result<ledger::Ledger> {
    open_with(path, ledger::Options::default())
}

/// [`open`] with options.
pub fn open_with(path: &Path, options: ledger::Options) -> anyhow::Result<ledger::Ledger> {
    must_exist(path)?;
    open_or_create(path, options, "opening")
}

/// Opens the ledger at `path`, creating it if there is none; `doing` names the step in the
/// error ("opening", "creating"). A ledger another process holds is an error that says how to
/// read it meanwhile.
pub fn open_or_create(
    path: &Path,
    options: ledger::Options,
    doing: &str,
) -> anyhow::Result<ledger::Ledger> {
    ledger::Ledger::open(path, options).map_err(|e| {
        opening_failed(
            path,
            e,
            doing,
            ", or ask it: `lifeline record`, `recover`, `plan`, `audit` and `history` take \
             --server URL to work through a running server, which also answers GET \
             /api/v1/state; KurrentDB clients read the log",
        )
    })
}

/// Why the ledger at `path` could not be opened for `doing`; when another process holds it,
/// what to do: stop it first, or `meanwhile`.
fn opening_failed(
    path: &Path,
    e: ledger::OpenError,
    doing: &str,
    meanwhile: &str,
) -> anyhow::Error {
    match e {
        ledger::OpenError::InUse { .. } => {
            anyhow::anyhow!("{e}: stop that process first (a `lifeline serve`?){meanwhile}")
        }
        e => anyhow::Error::new(e).context(format!("{doing} {}", path.display())),
    }
}

/// A missing ledger is an error that says how to make one (the commands other than `init`
/// never create one).
fn must_exist(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    Err(exit::with_code(
        exit::NOT_FOUND,
        format!(
            "no ledger at {} (create one with `lifeline init`, or name another with --ledger or \
             LIFELINE_LEDGER)",
            path.display()
        ),
    ))
}

fn compact(path: &Path, format: cli::Format) -> anyhow::Result<()> {
    must_exist(path)?; // `Ledger::compact` opens it (and would create it)
    let spinner = progress::spinner("compacting");
    let done = ledger::Ledger::compact(path, ledger::Options::default());
    spinner.finish_and_clear();
    let done = done.map_err(|e| {
        opening_failed(
            path,
            e,
            "compacting",
            "; compacting needs the ledger to itself",
        )
    })?;
    match format {
        cli::Format::Json => output::json_line(&serde_json::json!({
            "ledger": path.display().to_string(),
            "bytes_before": done.before,
            "bytes_after": done.after,
        })),
        cli::Format::Table => {
            println!(
                "{}: {} before, {} after ({} given back)",
                path.display(),
                DecimalBytes(done.before),
                DecimalBytes(done.after),
                DecimalBytes(done.before.saturating_sub(done.after))
            );
            Ok(())
        }
    }
}

fn snapshot(l: &ledger::Ledger, a: &cli::SnapshotArgs, format: cli::Format) -> anyhow::Result<()> {
    let bar = progress::bar(l.head(), "snapshot");
    let keep = world::Keep::from_keep_all(a.keep_all);
    let built = if a.rewrite {
        world::rewrite_snapshots(l, a.every, keep, |p| bar.set_position(p))?
    } else {
        world::build_snapshots(l, a.every, keep, |p| bar.set_position(p))?
    };
    bar.finish_and_clear();
    let stored = l.snapshots()?;
    l.close();
    let bytes: u64 = stored.iter().map(|(_, b)| b).sum();
    let file = std::fs::metadata(l.path())
        .with_context(|| format!("reading the size of {}", l.path().display()))?
        .len();
    let (written, dropped) = (built.written, built.dropped);
    match format {
        cli::Format::Json => output::json_line(&serde_json::json!({
            "written": written, "dropped": dropped, "stored": stored.len(), "bytes": bytes,
            "ledger_file_bytes": file,
        })),
        cli::Format::Table => {
            println!(
                "wrote {written} snapshots, removed {dropped}; {} stored, {} in all ({:.1}% of \
                 the {} ledger file)",
                stored.len(),
                DecimalBytes(bytes),
                100.0 * bytes as f64 / file.max(1) as f64,
                DecimalBytes(file)
            );
            Ok(())
        }
    }
}
