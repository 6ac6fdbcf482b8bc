//! Exit codes, and the error type that carries one.

use std::fmt;

pub const ERROR: i32 = 1;
pub const USAGE: i32 = 2;
pub const WRONG_EXPECTED_REVISION: i32 = 3;
pub const INTEGRITY: i32 = 4;
pub const NOT_FOUND: i32 = 5;

/// An error that ends the program with a particular exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub fn with_code(code: i32, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code,
        message: message.into(),
    })
}

/// The exit code for an error: its own, or one that fits a ledger error inside it.
pub fn code_of(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<Exit>() {
            return x.code;
        }
        if let Some(a) = cause.downcast_ref::<ledger::AppendError>() {
            if matches!(a, ledger::AppendError::WrongExpectedVersion { .. }) {
                return WRONG_EXPECTED_REVISION;
            }
        }
        if let Some(
            ledger::ProofError::OutOfRange { .. } | ledger::ProofError::SizeTooLarge { .. },
        ) = cause.downcast_ref::<ledger::ProofError>()
        {
            return NOT_FOUND;
        }
        if let Some(r) = cause.downcast_ref::<ledger::ReadError>() {
            match r {
                ledger::ReadError::StreamNotFound { .. }
                | ledger::ReadError::InvalidPosition { .. } => return NOT_FOUND,
                ledger::ReadError::Corrupt { .. } => return INTEGRITY,
                _ => {}
            }
        }
        if let Some(ledger::OpenError::Damaged { .. }) = cause.downcast_ref::<ledger::OpenError>() {
            return INTEGRITY;
        }
    }
    ERROR
}
