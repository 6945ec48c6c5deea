//! The `groundtruth` binary: parse flags, call the library, map errors to exit code 2.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = groundtruth::cli::Cli::parse();
    let result = groundtruth::cli::execute(cli).and_then(|code| {
        groundtruth::cli::out::flush()
            .map(|()| code)
            .map_err(anyhow::Error::from)
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => match groundtruth::cli::out::report(&e) {
            None => ExitCode::from(groundtruth::cli::out::EXIT_BROKEN_PIPE),
            Some(line) => {
                groundtruth::cli::out::note(format_args!("groundtruth: {line}\n"));
                ExitCode::from(groundtruth::plan::EXIT_BAD_INPUT)
            }
        },
    }
}
