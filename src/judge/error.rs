//! Why a case stopped before a verdict: skipped for a stated reason, or an error that
//! keeps what failed beneath it as its source, so a ticket or a one-line message can print
//! the whole chain.

use crate::outcome::SkipReason;
use std::error::Error;
use std::fmt::Display;
use std::sync::Arc;

/// Why judging a case failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JudgeError {
    /// A rule of the inputs or of the method does not hold; the message says which.
    #[error("{0}")]
    Rule(String),
    /// An operation failed: `what` names it (may be empty when the source says it all).
    #[error("{what}")]
    Failed {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: Arc<dyn Error + Send + Sync>,
    },
}

impl JudgeError {
    /// `what` failed because of `source`.
    pub fn failed(what: impl Display, source: impl Error + Send + Sync + 'static) -> JudgeError {
        JudgeError::Failed {
            what: what.to_string(),
            source: Arc::new(source),
        }
    }

    /// The error and its sources in one line, `: `-separated; a source whose message its
    /// parent already quotes is not repeated.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// `e` and its sources in one line, `: `-separated, skipping empty messages and a source
/// its parent's message already contains.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        let msg = err.to_string();
        if !msg.is_empty() && !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
        next = err.source();
    }
    out
}

/// Why a case stopped before a verdict.
#[derive(Debug, Clone)]
pub(crate) enum Stop {
    /// Not judged, for a reason (a skip the run's policy may turn into an error).
    Skip(SkipReason),
    /// Could not be judged.
    Error(JudgeError),
}

impl Stop {
    /// A rule that does not hold, in words.
    pub(crate) fn rule(msg: impl Into<String>) -> Stop {
        Stop::Error(JudgeError::Rule(msg.into()))
    }
}

impl From<JudgeError> for Stop {
    fn from(e: JudgeError) -> Stop {
        Stop::Error(e)
    }
}

/// Turning any error into a [`Stop`] that keeps it as its source.
pub(crate) trait Context<T> {
    /// On error: `what` failed, the error beneath it.
    fn context(self, what: impl Display) -> Result<T, Stop>;
    /// On error: the error itself, kept as the source.
    fn or_stop(self) -> Result<T, Stop>;
}

impl<T, E: Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, Stop> {
        self.map_err(|e| Stop::Error(JudgeError::failed(what, e)))
    }

    fn or_stop(self) -> Result<T, Stop> {
        self.map_err(|e| Stop::Error(JudgeError::failed("", e)))
    }
}

impl From<crate::subject::SubjectError> for Stop {
    fn from(e: crate::subject::SubjectError) -> Stop {
        match e {
            crate::subject::SubjectError::Missing { path, fetch } => {
                Stop::Skip(SkipReason::ModelMissing { path, fetch })
            }
            crate::subject::SubjectError::Invalid(m) => Stop::rule(m),
            crate::subject::SubjectError::Failed { what, source } => {
                Stop::Error(JudgeError::Failed { what, source })
            }
        }
    }
}

impl From<crate::run::RunError> for Stop {
    fn from(e: crate::run::RunError) -> Stop {
        match e {
            crate::run::RunError::Unavailable(u) => Stop::Skip(SkipReason::NoDevice {
                device: format!("{}: {}", u.device, u.why),
            }),
            other => Stop::Error(JudgeError::failed("", other)),
        }
    }
}

impl From<candle_core::Error> for Stop {
    fn from(e: candle_core::Error) -> Stop {
        Stop::Error(JudgeError::failed("candle", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_keeps_every_source_once() {
        let io = std::io::Error::other("disk on fire");
        let e = JudgeError::failed("read model.gguf", Outer(io));
        assert_eq!(e.chain(), "read model.gguf: outer: disk on fire");
        // A parent that already quotes its source does not repeat it.
        let quoted = JudgeError::failed("", std::io::Error::other("x: disk on fire"));
        assert_eq!(quoted.chain(), "x: disk on fire");
    }
}
