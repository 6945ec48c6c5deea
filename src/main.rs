//! The `groundtruth` binary: parse flags, call the library, map errors to exit code 2.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = groundtruth::cli::Cli::parse();
    match groundtruth::cli::execute(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the chain of causes joined, so the file and the field stay visible.
            eprintln!("groundtruth: {}", groundtruth::cli::one_line(&e));
            ExitCode::from(groundtruth::plan::EXIT_BAD_INPUT)
        }
    }
}
