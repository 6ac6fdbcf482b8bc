//! `verify`, `checkpoint`, `prove` and `verify-proof`.

use crate::cli::{CheckpointArgs, Format, ProveArgs, VerifyArgs, VerifyProofArgs};
use crate::exit::{with_code, INTEGRITY};
use anyhow::Context;
use ledger::hex32::encode as hex;
use ledger::{Checkpoint, ConsistencyProof, InclusionProof, Ledger};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A proof file: what `prove` writes and `verify-proof` reads.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProofFile {
    Inclusion {
        proof: InclusionProof,
        /// The checkpoint the proof leads to, for convenience; check against your own copy.
        checkpoint: Checkpoint,
    },
    Consistency {
        proof: ConsistencyProof,
        old_checkpoint: Checkpoint,
        checkpoint: Checkpoint,
    },
}

pub fn read_checkpoint(path: &Path) -> anyhow::Result<Checkpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading checkpoint {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a checkpoint (expected {{\"size\": N, \"root\": \"<64 hex>\"}})",
            path.display()
        )
    })
}

pub fn verify(path: &Path, a: &VerifyArgs, format: Format) -> anyhow::Result<()> {
    let against = a.checkpoint.as_deref().map(read_checkpoint).transpose()?;
    let l = match crate::open(path) {
        Ok(l) => l,
        Err(e) => {
            if let Some(ledger::OpenError::Damaged {
                position, reason, ..
            }) = e.downcast_ref::<ledger::OpenError>()
            {
                return Err(with_code(
                    INTEGRITY,
                    format!("verification failed at position {position}: {reason}"),
                ));
            }
            return Err(e);
        }
    };
    let bar = crate::progress::bar(l.head(), "verify");
    let report = l.verify(against, |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    l.close();
    if format == Format::Json {
        crate::output::json_line(&report)?;
    }
    if let Some(p) = &report.problem {
        return Err(with_code(
            INTEGRITY,
            format!(
                "verification failed at position {}: {} ({} events before it verify)",
                p.position, p.reason, report.events
            ),
        ));
    }
    if report.matches_checkpoint == Some(false) {
        let c = against.expect("a match result implies a checkpoint");
        return Err(with_code(
            INTEGRITY,
            format!(
                "the log does not begin with the {} events of the checkpoint (root {})",
                c.size,
                hex(&c.root)
            ),
        ));
    }
    if format == Format::Table {
        println!(
            "verified {} events: hash chain, positions and Merkle tree intact",
            report.events
        );
        println!(
            "checkpoint: size {} root {}",
            report.checkpoint.size,
            hex(&report.checkpoint.root)
        );
        if report.matches_checkpoint == Some(true) {
            println!("the log begins with exactly the events of the given checkpoint");
        }
    }
    Ok(())
}

pub fn checkpoint(l: &Ledger, a: &CheckpointArgs, format: Format) -> anyhow::Result<()> {
    let c = l.checkpoint_at(a.size)?;
    l.close();
    match format {
        Format::Json => crate::output::json_line(&c),
        Format::Table => {
            println!("size {} root {}", c.size, hex(&c.root));
            Ok(())
        }
    }
}

pub fn prove(path: &Path, a: &ProveArgs, format: Format) -> anyhow::Result<()> {
    if let Some(proof) = &a.check {
        let checkpoint = a.checkpoint.clone().expect("clap requires --checkpoint");
        let args = VerifyProofArgs {
            proof: proof.clone(),
            checkpoint,
            old_checkpoint: None,
        };
        return verify_proof(&args, format);
    }
    let l = crate::open(path)?;
    let file = match a.consistency {
        Some(old) => {
            let proof = l.prove_consistency(old, a.size)?;
            let old_checkpoint = l.checkpoint_at(Some(old))?;
            let checkpoint = l.checkpoint_at(Some(proof.new_size))?;
            ProofFile::Consistency {
                proof,
                old_checkpoint,
                checkpoint,
            }
        }
        None => {
            let position = a.position.expect("clap requires a position");
            let proof = l.prove_inclusion(position, a.size)?;
            let checkpoint = l.checkpoint_at(Some(proof.tree_size))?;
            ProofFile::Inclusion { proof, checkpoint }
        }
    };
    l.close();
    println!("{}", serde_json::to_string_pretty(&file)?);
    Ok(())
}

pub fn verify_proof(a: &VerifyProofArgs, format: Format) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.proof)
        .with_context(|| format!("reading proof {}", a.proof.display()))?;
    let file: ProofFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a proof written by `lifeline prove`",
            a.proof.display()
        )
    })?;
    let checkpoint = read_checkpoint(&a.checkpoint)?;
    let fail = |e: ledger::ProofError| with_code(INTEGRITY, format!("proof rejected: {e}"));
    let summary = match file {
        ProofFile::Inclusion { proof, .. } => {
            let event = proof.verify(&checkpoint).map_err(fail)?;
            format!(
                "event {} ({} revision {} of {}) is at position {} of the log of {} events",
                event.id,
                event.event_type,
                event.revision,
                event.stream,
                event.position,
                checkpoint.size
            )
        }
        ProofFile::Consistency {
            proof,
            old_checkpoint,
            ..
        } => {
            let old = match &a.old_checkpoint {
                Some(p) => read_checkpoint(p)?,
                None => old_checkpoint,
            };
            proof.verify(&old, &checkpoint).map_err(fail)?;
            format!(
                "the log of {} events extends the log of {} events",
                checkpoint.size, old.size
            )
        }
    };
    match format {
        Format::Json => {
            crate::output::json_line(&serde_json::json!({"ok": true, "summary": summary}))
        }
        Format::Table => {
            println!("proof verified: {summary}");
            Ok(())
        }
    }
}
