//! The `groundtruth` binary: everything, error mapping included, is in the library.

fn main() -> std::process::ExitCode {
    groundtruth::cli::main()
}
