//! `brevet`, the operator and approver command line, as a library.
//!
//! [`client::Client`] is a typed HTTPS client for the `brevetd` API, reused by integration tests
//! and benchmarks. [`run`] executes one parsed command line against it; `main.rs` only parses
//! arguments, calls [`run`] and prints the error. Everything that touches the process (the
//! environment, the clock, standard input and output) comes in through [`Env`] and the reader
//! and writer given to [`run`], so commands are tested without a terminal or a global state.

mod cli;
pub mod client;
mod commands;
mod error;
mod output;
pub mod session;
mod tls;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

pub use cli::{Cli, Command, Global};
pub use error::Error;

/// What a command needs from the process it runs in.
#[derive(Debug, Clone)]
pub struct Env {
    /// Where `session.json` lives; `None` when no directory could be determined.
    pub config_dir: Option<PathBuf>,
    /// The current time, unix seconds (for session expiry).
    pub now: i64,
    /// Whether standard input is a terminal (then `login` prompts for the password).
    pub stdin_is_terminal: bool,
}

impl Env {
    /// The real environment: `BREVET_CONFIG_DIR` / `XDG_CONFIG_HOME` / `HOME`, the system clock
    /// and the real standard input.
    pub fn from_process() -> Env {
        let var = std::env::var_os;
        Env {
            config_dir: session::config_dir(
                var("BREVET_CONFIG_DIR"),
                var("XDG_CONFIG_HOME"),
                var("HOME"),
            ),
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
            stdin_is_terminal: std::io::stdin().is_terminal(),
        }
    }
}

/// Runs one command. Output goes to `out`; `login` reads the password from `stdin`.
pub fn run(cli: Cli, env: &Env, stdin: &mut dyn BufRead, out: &mut dyn Write) -> Result<(), Error> {
    let mut ctx = commands::Ctx {
        global: cli.global.without_empty_values(),
        env,
        stdin,
        out,
    };
    let result = commands::dispatch(&mut ctx, cli.command);
    let flushed = ctx.out.flush().map_err(Error::Output);
    result.and(flushed)
}
