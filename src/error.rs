//! Typed errors of the library. Every variant names the thing at fault and the problem, so the
//! command line and the window can show one clear message without adding guesswork.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },

    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },

    #[error("{what} became non-finite (NaN or Inf) at step {step} in {chains} chain(s)")]
    NonFinite {
        what: String,
        step: usize,
        chains: usize,
    },

    #[error(
        "{what} diverged at step {step}: estimates reach {max:.3e}, far outside the prior's data \
         range (about ±{bound:.2}), in chain(s) {chains}; lower the step size (e.g. zeta) or use \
         more steps"
    )]
    Diverged {
        what: String,
        step: usize,
        max: f64,
        bound: f64,
        chains: String,
    },

    #[error("the {sampler} sampler cannot run here: {reason}")]
    Unsupported { sampler: String, reason: String },

    #[error("backend: {0}")]
    Backend(String),

    #[error("interrupted: the run was stopped and nothing was written")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn file(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    pub fn shape(
        what: impl Into<String>,
        expected: impl std::fmt::Debug,
        got: impl std::fmt::Debug,
    ) -> Self {
        Error::Shape {
            what: what.into(),
            expected: format!("{expected:?}"),
            got: format!("{got:?}"),
        }
    }

    /// Re-attributes an error raised while reading a file's content to that file.
    pub fn in_file(self, path: impl AsRef<Path>) -> Self {
        match self {
            Error::File { .. } => self,
            other => Error::file(path, other.to_string()),
        }
    }
}
