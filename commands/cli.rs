//! Every flag of the program, defined once, with help a user can act on.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "lifeline",
    version,
    about = "Event-sourced recovery ledger for HCL Connections Communities",
    long_about = "Lifeline keeps every Connections community lifecycle event in an immutable, \
                  hash-chained log, so that after a database restore it can tell what each \
                  database lost and how to repair it.\n\nExit codes: 0 success, 1 error, \
                  2 bad usage, 3 wrong expected revision, 4 integrity check failed, \
                  5 not found."
)]
pub struct Cli {
    /// The ledger file.
    #[arg(
        long,
        global = true,
        env = "LIFELINE_LEDGER",
        default_value = "lifeline.redb"
    )]
    pub ledger: PathBuf,
    /// Output format: human tables, JSON (one object per line for events), CSV (audit; a
    /// plan's owners), or for `plan`: a Markdown runbook, wsadmin scripts or HTML reports.
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
    /// Comma-separated values (`audit`; `plan`: the owners to contact).
    Csv,
    /// `plan`: a Markdown runbook (with --out, also owners.csv).
    Runbook,
    /// `plan`: one wsadmin Jython script per service (needs --out).
    Wsadmin,
    /// `plan`: the sync reports and an index page (needs --out).
    Html,
}

/// The output formats every command speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an empty ledger (does nothing if one is already there).
    Init,
    /// Append one event to a stream.
    Append(AppendArgs),
    /// Read a stream, or `$all`, as a table or JSON lines.
    Read(ReadArgs),
    /// Walk the whole log: hash chain, positions and Merkle tree. Exit 4 names the first bad
    /// position.
    Verify(VerifyArgs),
    /// Print the checkpoint (size and Merkle root) to write down elsewhere.
    Checkpoint(CheckpointArgs),
    /// Print a proof that an event is in the log (or that the log extends an older checkpoint).
    Prove(ProveArgs),
    /// Check a proof file against a checkpoint file; needs no ledger.
    VerifyProof(VerifyProofArgs),
    /// Write every event as JSON Lines (schema/jsonl.md).
    Export(ExportArgs),
    /// Append the events of a JSON Lines file (all of it, or nothing if any line is bad), or,
    /// with `import atom DIR`, what saved Communities API responses show that the ledger lacks.
    Import(ImportArgs),
    /// Record one Connections lifecycle fact (schema/events/), checked as Connections would.
    Record(RecordArgs),
    /// Show what each database held (or, with --intended, should have held) at a point.
    Replay(ReplayArgs),
    /// Store snapshots of the replayed state so that later replays start near their point.
    Snapshot(SnapshotArgs),
    /// Shrink the ledger file to what it holds: give back the space of removed snapshots.
    /// The ledger must not be open elsewhere (stop `lifeline serve` first); nothing it holds
    /// changes.
    Compact,
    /// Who did what, when, and which databases it concerned (filters combine).
    Audit(AuditArgs),
    /// A community's timeline: each change, the databases holding it, and those that lost it.
    History(HistoryArgs),
    /// What restores broke: settings that differ, orphaned app data, widgets without data,
    /// the changes each database lost, and stale queued events.
    Recover(RecoverArgs),
    /// The repair plan, in the vendor's order: each step with its commands, reason and check.
    /// `plan record` and `plan done` put the repair in the ledger.
    Plan(PlanArgs),
    /// Write a realistic, seeded deployment history into a new, empty ledger.
    Simulate(SimulateArgs),
    /// Read a Connections server's Communities API (every community, its members) and record
    /// what differs from the ledger, with the server's times.
    Sync(SyncArgs),
    /// Serve the ledger on one port: the Connections lifecycle handler (Communities POSTs each
    /// lifecycle event to http://ADDR/lifecycle/{widgetDefId}; see README for
    /// widgets-config.xml), the JSON API under /api/v1/, and the KurrentDB gRPC protocol for
    /// KurrentDB clients (kurrentdb://ADDR?tls=false).
    Serve(ServeArgs),
    /// The main job end to end: simulate a deployment, restore Activities from a backup two
    /// days old and Communities from last night's, and write the findings, plan and reports.
    Demo(DemoArgs),
}

/// Where recovery looks: a point, and restores to consider there.
#[derive(Args, Debug)]
pub struct PointArgs {
    /// The point: now, @POSITION, an RFC 3339 time (recorded time, or occurred time with
    /// --occurred), a date (its midnight, UTC), or a backup label.
    #[arg(long, default_value = "now")]
    pub at: crate::domain::At,
    /// Read a time in --at as when events happened in Connections.
    #[arg(long)]
    pub occurred: bool,
    /// A restore to consider before making it, as DATABASE=BACKUP (repeat for several), e.g.
    /// --restore Activities=activities-2026-11-20. Nothing is written.
    #[arg(long, value_name = "DATABASE=BACKUP")]
    pub restore: Vec<crate::recover::RestoreArg>,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub point: PointArgs,
    /// Rank the recent backups of the restored (or --restore) databases by the repair work
    /// each would leave.
    #[arg(long)]
    pub advise: bool,
    #[command(flatten)]
    pub remote: ServerArgs,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub action: Option<PlanAction>,
    #[command(flatten)]
    pub point: PointArgs,
    /// Write into this directory instead of standard output: plan.json, runbook.md and
    /// owners.csv, wsadmin/*.py, or the HTML reports, as --format says (not the table).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub remote: ServerArgs,
}

/// Asking the server that holds the ledger instead of opening it.
#[derive(Args, Debug, Default)]
pub struct ServerArgs {
    /// Ask the `lifeline serve` that holds the ledger (its base URL, e.g.
    /// http://127.0.0.1:2113) instead of opening it: a served ledger cannot be opened meanwhile.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// With --server: a file holding a token of the server's access file (sent as
    /// Authorization: Bearer).
    #[arg(long, requires = "server", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// With an https --server: trust the certificates in this PEM file (the server's own
    /// --tls-cert, when it signed it itself) instead of the usual certificate authorities.
    #[arg(long, requires = "server", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum PlanAction {
    /// Record the current plan in the ledger (stream repair-<id>), with what each step does.
    Record {
        /// Who records it.
        #[arg(long, env = "USER")]
        actor: Option<String>,
    },
    /// Record steps of a recorded plan as done: from then on the ledger takes the databases
    /// as the steps leave them.
    Done {
        /// The plan id (at least its first 8 characters).
        plan: String,
        /// The steps done: a number (5), a range (13-678) or a list (1,3,5-9); recorded
        /// together or not at all.
        #[arg(value_name = "STEPS", value_parser = crate::plan::parse_steps)]
        steps: Steps,
        /// Who did it.
        #[arg(long, env = "USER")]
        actor: Option<String>,
    },
}

/// Step numbers of a plan, in order, each once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steps(pub Vec<u32>);

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The server's base URL, e.g. https://connections.example.com
    #[arg(long)]
    pub server: String,
    /// The user to sign in as (an administrator sees every community).
    #[arg(long, requires = "password_file")]
    pub user: Option<String>,
    /// A file holding the password (never given on the command line).
    #[arg(long, requires = "user")]
    pub password_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on. Any address but loopback needs --tls-cert/--tls-key and an
    /// --access file with at least one token or user.
    #[arg(long, default_value = "127.0.0.1:2113")]
    pub listen: std::net::SocketAddr,
    /// A JSON file of who may do what: {"tokens": [{"token": "…", "role": "read|write|admin"}],
    /// "users": [{"user": "…", "password": "…", "role": "…"}]}. Tokens are sent as
    /// `Authorization: Bearer`, users as HTTP Basic (what KurrentDB clients send). Without it,
    /// only loopback is served and nothing is asked.
    #[arg(long, alias = "tokens", value_name = "FILE")]
    pub access: Option<PathBuf>,
    /// The server's certificate chain (PEM): the server's own certificate first (not a
    /// certificate authority's), then any intermediates. With --tls-key, everything is served
    /// over TLS (HTTP/1.1 and HTTP/2 by ALPN); without, in clear (gRPC as h2c).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The HOST:PORT that KurrentDB clients are told to use (Gossip); the listen address by
    /// default.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Requests per second each client address may make (0: no limit). Beyond it, requests are
    /// answered at once with 429 (gRPC: UNAVAILABLE "Server Is Too Busy").
    #[arg(long, default_value_t = 50_000, value_name = "PER_SECOND")]
    pub rate_limit: u32,
    /// Store a snapshot after every this many log positions, checked each minute in the
    /// background (0: never), so that replay and recover start near their point. Older ones
    /// are thinned as `lifeline snapshot` says.
    #[arg(long, default_value_t = crate::world::SNAPSHOT_EVERY, value_name = "POSITIONS")]
    pub snapshot_every: u64,
    /// Keep a snapshot at every mark, as `lifeline snapshot --keep-all` does: replays of old
    /// points stay fast, and the snapshots' storage grows with the log.
    #[arg(long)]
    pub snapshot_keep_all: bool,
}

impl ServeArgs {
    /// The defaults, listening on `listen` (port 0: any free port).
    pub fn on(listen: std::net::SocketAddr) -> ServeArgs {
        ServeArgs {
            listen,
            access: None,
            tls_cert: None,
            tls_key: None,
            advertise: None,
            rate_limit: 50_000,
            snapshot_every: crate::world::SNAPSHOT_EVERY,
            snapshot_keep_all: false,
        }
    }
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// How many communities (at least one).
    #[arg(long, default_value_t = 2000, value_parser = at_least_one)]
    pub communities: usize,
    /// How many days of history.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// The seed: the same seed and flags give the same history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Midnight (UTC) of the first day, RFC 3339.
    #[arg(long, default_value = "2026-10-01T00:00:00Z")]
    pub start: String,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to write the ledger (demo.redb, made afresh), the reports, runbook and scripts.
    #[arg(long, default_value = "lifeline-demo")]
    pub out: PathBuf,
    /// Rows of each finding shown on the terminal (all are in the files).
    #[arg(long, default_value_t = 5)]
    pub rows: usize,
    #[command(flatten)]
    pub simulation: SimulateArgs,
}

#[derive(Args, Debug)]
pub struct AppendArgs {
    /// Stream to append to, e.g. community-<uuid>.
    #[arg(long)]
    pub stream: String,
    /// Event type, e.g. CommunityCreated.
    #[arg(long = "type")]
    pub event_type: String,
    /// Event id (a UUID); a new one when absent. Re-sending the same id is an idempotent retry.
    #[arg(long)]
    pub id: Option<uuid::Uuid>,
    /// What the stream must be before the append: any, no-stream, exists, or a revision number.
    #[arg(long, default_value = "any")]
    pub expected: ledger::ExpectedRevision,
    /// Event data, as JSON.
    #[arg(
        long,
        conflicts_with = "data_file",
        required_unless_present = "data_file"
    )]
    pub data: Option<String>,
    /// Read the event data (JSON) from this file; `-` for standard input.
    #[arg(long)]
    pub data_file: Option<PathBuf>,
    /// Event metadata, as JSON.
    #[arg(long)]
    pub metadata: Option<String>,
    /// When it happened in Connections (RFC 3339); the recorded time when absent.
    #[arg(long)]
    pub occurred: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    /// A stream name, or `$all` for the whole log.
    pub stream: String,
    /// Read from the end towards the start.
    #[arg(long)]
    pub backwards: bool,
    /// Start at this revision (a stream) or position (`$all`); the start (or end, with
    /// --backwards) when absent. Forwards includes it; backwards on `$all` stops before it.
    #[arg(long)]
    pub from: Option<u64>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub count: u64,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Also check that the log still begins with exactly the events of this checkpoint file
    /// (written by `lifeline checkpoint --format json`).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// The checkpoint of the first N events instead of all of them.
    #[arg(long)]
    pub size: Option<u64>,
}

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// Position of the event to prove.
    #[arg(required_unless_present_any = ["consistency", "check"])]
    pub position: Option<u64>,
    /// Prove against the tree of the first N events (default: all).
    #[arg(long)]
    pub size: Option<u64>,
    /// Instead: prove the log extends the tree of its first OLD_SIZE events.
    #[arg(long, value_name = "OLD_SIZE")]
    pub consistency: Option<u64>,
    /// Instead: check this proof file (same as `verify-proof`).
    #[arg(long, value_name = "PROOF", requires = "checkpoint")]
    pub check: Option<PathBuf>,
    /// With --check: the checkpoint file to check against.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// The proof file written by `lifeline prove`.
    pub proof: PathBuf,
    /// The checkpoint the proof must lead to (an inclusion proof), or the newer of two.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// For a consistency proof: the older checkpoint.
    #[arg(long)]
    pub old_checkpoint: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    subcommand_negates_reqs = true,
    override_usage = "lifeline import [OPTIONS] <FILE>\n       lifeline import [OPTIONS] atom [--complete] <DIR>"
)]
pub struct ImportArgs {
    /// A JSON Lines file (schema/jsonl.md); `-` for standard input is not accepted, since the
    /// file is read twice (checked whole, then written).
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    #[command(subcommand)]
    pub source: Option<ImportSource>,
}

#[derive(Subcommand, Debug)]
pub enum ImportSource {
    /// A directory of saved Communities API responses (communities feeds and entries, the
    /// trash feed, members and widgets feeds): what differs from the ledger is appended, with
    /// the feeds' times.
    Atom {
        /// The directory (*.xml and *.atom files are read).
        dir: PathBuf,
        /// The directory holds every page of communities/all and of communities/trash: a
        /// community the ledger knows that is in neither is recorded as purged.
        #[arg(long)]
        complete: bool,
    },
}

#[derive(Args, Debug)]
pub struct RecordArgs {
    /// The event type, e.g. MembersAdded (schema/events/ lists them all).
    #[arg(value_name = "TYPE")]
    pub event_type: String,
    /// The event's data as JSON, e.g. '{"community":"<uuid>","members":{"jdoe":"member"}}'.
    #[arg(long)]
    pub data: String,
    /// Record it unchecked, as it happened (for history brought in from elsewhere).
    #[arg(long)]
    pub force: bool,
    /// When it happened in Connections (RFC 3339); now when absent.
    #[arg(long)]
    pub occurred: Option<String>,
    /// The ledger event id (a UUID); a new one when absent.
    #[arg(long)]
    pub id: Option<uuid::Uuid>,
    #[command(flatten)]
    pub remote: ServerArgs,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The point: now, @POSITION, an RFC 3339 time (recorded time, or occurred time with
    /// --occurred), a date (its midnight, UTC), or a backup label.
    #[arg(long, default_value = "now")]
    pub at: crate::domain::At,
    /// Read a time in --at as when events happened in Connections, not when they were recorded.
    #[arg(long)]
    pub occurred: bool,
    /// Only this database: Communities, Activities, Blogs, Files, Forums, Wikis, News, Library.
    #[arg(long, value_parser = parse_database)]
    pub database: Option<projections::Database>,
    /// Only this community, by uuid or by name.
    #[arg(long)]
    pub community: Option<String>,
    /// Show the intended state (every change applied, every delivery made, no restores).
    #[arg(long)]
    pub intended: bool,
    /// Fold every event from the start of the log, using neither a snapshot nor, for
    /// --community UUID, only the events about that community (the answer is the same).
    #[arg(long)]
    pub no_snapshots: bool,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// A snapshot after every this many log positions: at each of the latest three such
    /// marks, fewer further back (half as many each time the age doubles), so that their
    /// storage stays a small share of the ledger. Stored snapshots off that schedule are
    /// removed (snapshots are a cache; the log is never touched).
    #[arg(long, default_value_t = crate::world::SNAPSHOT_EVERY)]
    pub every: u64,
    /// Keep a snapshot at every mark, however old, and remove none: faster replay to old
    /// points, more storage. The next thinned build (`snapshot`, `import`, `simulate`,
    /// `sync`, `serve` without --snapshot-keep-all) removes the extra ones again.
    #[arg(long)]
    pub keep_all: bool,
    /// Write every snapshot again from the whole log, replacing those stored: after an
    /// upgrade, so that they take this version's format (older ones are still read, slower).
    #[arg(long)]
    pub rewrite: bool,
}

pub fn parse_database(s: &str) -> Result<projections::Database, String> {
    projections::Database::parse(s).ok_or_else(|| {
        format!(
            "'{s}' is not a database; one of: {}",
            projections::Database::ALL.map(|d| d.name()).join(", ")
        )
    })
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only events about this community (uuid, or its current name).
    #[arg(long)]
    pub community: Option<String>,
    /// Only events by this user (external id).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events of this type, e.g. MembersRemoved.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Only events about this database.
    #[arg(long, value_parser = parse_database)]
    pub database: Option<projections::Database>,
    /// Only events after this point (now, @POSITION, an RFC 3339 time, a date, a backup label).
    #[arg(long)]
    pub since: Option<crate::domain::At>,
    /// Only events up to this point, inclusive.
    #[arg(long)]
    pub until: Option<crate::domain::At>,
    /// At most this many events, the latest.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    #[command(flatten)]
    pub remote: ServerArgs,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The community, by uuid or by its current name.
    pub community: String,
    #[command(flatten)]
    pub remote: ServerArgs,
}

/// A count that must not be zero.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("at least one is needed".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
