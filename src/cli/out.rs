//! Standard output and error for the commands: a closed pipe (`groundtruth claims list |
//! head -1`) ends the program quietly with [`EXIT_BROKEN_PIPE`]; any other failure to
//! write standard output (a full disk behind `> file`) is exit 2 with one line. Messages
//! on standard error are best effort: one that cannot be written cannot be reported.

use std::io::Write;

/// The status a closed standard output ends the program with: 141 is 128 + SIGPIPE, what
/// a shell reports for a tool the signal killed, so `set -o pipefail` scripts see
/// `groundtruth … | head` exactly as they see `yes | head`.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Standard output could not be written.
#[derive(Debug, thiserror::Error)]
#[error("write standard output: {0}")]
pub struct WriteError(pub std::io::Error);

impl WriteError {
    /// Whether the reader went away (a closed pipe), which is not an error to report.
    pub fn is_broken_pipe(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// Writes formatted text to standard output.
pub fn write(args: std::fmt::Arguments) -> Result<(), WriteError> {
    std::io::stdout().lock().write_fmt(args).map_err(WriteError)
}

/// Flushes standard output (what was printed without a newline is still buffered).
pub fn flush() -> Result<(), WriteError> {
    std::io::stdout().lock().flush().map_err(WriteError)
}

/// Writes formatted text to standard error, ignoring failures.
pub fn note(args: std::fmt::Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// What `main` does with an error: `None` to end quietly with [`EXIT_BROKEN_PIPE`] (the
/// reader closed standard output), else the one line to print.
pub fn report(e: &anyhow::Error) -> Option<String> {
    if e.chain().any(|c| {
        c.downcast_ref::<WriteError>()
            .is_some_and(WriteError::is_broken_pipe)
    }) {
        return None;
    }
    // One line (causes joined, see `cli::one_line`), control bytes escaped and cut short.
    Some(crate::excerpt::one_line(&super::one_line(e)))
}
