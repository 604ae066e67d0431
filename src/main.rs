//! The `lagesbild` command: parses the arguments and dispatches to the command line's modules
//! (`lagesbild::cli`). Errors end here, printed with their causes and what to fix, and a non-zero
//! exit code.

use std::process::ExitCode;

use clap::Parser;
use lagesbild::cli::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`| head`) is not an error worth a message.
        Err(error)
            if error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
