//! `brevet-agent`: parses arguments and calls the library.

use std::process::ExitCode;

use brevet_agent::cli::{self, Command};
use brevet_agent::run;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("brevet-agent: {e}");
            eprintln!("{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("brevet-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    match run::main(command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("brevet-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
