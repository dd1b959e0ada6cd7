//! Exit codes (a contract: the README's "CLI") and the error type that carries one to `main`.

use std::fmt;

/// Every expectation held, nothing regressed.
pub const OK: u8 = 0;
/// An expectation failed or a metric regressed against the baseline.
pub const EXPECTATION_FAILED: u8 = 1;
/// Bad input: a scenario, a flag, a path.
pub const BAD_INPUT: u8 = 2;
/// Infrastructure: QEMU, downloads, the guest, the disk.
pub const INFRASTRUCTURE: u8 = 3;

/// An error with the exit code it ends the program with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: BAD_INPUT,
            error: error.into(),
        }
    }

    pub fn infrastructure(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: INFRASTRUCTURE,
            error: error.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Infrastructure by default: anything not known to be the user's input is ours to fix.
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::infrastructure(error)
    }
}
