//! `brevet`: parses the command line, runs it, and prints any error as one line on stderr.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = brevet_cli::Cli::parse();
    let env = brevet_cli::Env::from_process();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    match brevet_cli::run(cli, &env, &mut stdin, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`brevet audit export | head`) is not worth a message.
        Err(brevet_cli::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("brevet: {e}");
            ExitCode::FAILURE
        }
    }
}
