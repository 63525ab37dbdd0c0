//! `brevetd`: parses arguments and calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use brevet_server::datadir::DataDir;
use brevet_server::{Error, clock, demo_agent, init, offline, quickstart, serve};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "brevetd",
    version,
    about = "Brevet control plane: just-in-time admin elevation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory: config, policy, CA, TLS and grant keys, database, admin user.
    Init {
        #[arg(long, env = "BREVET_DATA_DIR", default_value = "brevet-data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// The database: sqlite://FILE (relative to the data dir) or postgres://USER@HOST/DB,
        /// which must exist and be empty. Written to brevet.toml as `server.db`.
        #[arg(long, env = "BREVET_DB", default_value = brevet_server::db_url::DEFAULT)]
        db: String,
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTPS API.
    Serve {
        #[arg(long, env = "BREVET_DATA_DIR", default_value = "brevet-data")]
        data_dir: PathBuf,
        /// Overrides `server.listen` in brevet.toml.
        #[arg(long)]
        listen: Option<String>,
        /// Overrides `server.db` in brevet.toml (postgres://…).
        #[arg(long, env = "BREVET_DB")]
        db: Option<String>,
    },
    /// Recover a person from the server machine, whether the server runs or not.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Initialise a demo (people, a device) if needed, and serve it.
    Quickstart {
        #[arg(long, default_value = "brevet-demo")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Clear every login and step-up throttle of NAME (audited as `user.unlocked`).
    Unlock {
        name: String,
        #[arg(long, env = "BREVET_DATA_DIR", default_value = "brevet-data")]
        data_dir: PathBuf,
        /// The database, when not the one in brevet.toml (postgres://…).
        #[arg(long, env = "BREVET_DB")]
        db: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Give NAME a new password and TOTP secret (printed once), end their sessions and clear
    /// their throttles (audited as `user.reset`).
    Reset {
        name: String,
        #[arg(long, env = "BREVET_DATA_DIR", default_value = "brevet-data")]
        data_dir: PathBuf,
        #[arg(long, env = "BREVET_DB")]
        db: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Error> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))?
    );
    Ok(())
}

async fn user(command: UserCommand) -> Result<(), Error> {
    let clock = clock::system();
    match command {
        UserCommand::Unlock {
            name,
            data_dir,
            db,
            json,
        } => {
            let out =
                offline::unlock(&DataDir::new(data_dir), db.as_deref(), &*clock, &name).await?;
            if json {
                return print_json(&out);
            }
            println!(
                "unlocked {}: {} throttle(s) cleared; they can log in at once",
                out.name, out.cleared
            );
        }
        UserCommand::Reset {
            name,
            data_dir,
            db,
            json,
        } => {
            let out =
                offline::reset(&DataDir::new(data_dir), db.as_deref(), &*clock, &name).await?;
            if json {
                return print_json(&out);
            }
            println!(
                "reset {}: {} session(s) ended\n\npassword: {}\nTOTP:     {}\n\nHand these over now: they are not shown again.{}",
                out.name,
                out.sessions_revoked,
                out.password,
                out.totp_uri,
                if out.enabled {
                    ""
                } else {
                    "\nThe account is disabled: `brevet user enable NAME` lets it log in."
                }
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The offline commands print their result; only problems go to the log.
    let level = match cli.command {
        Command::User { .. } => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BREVET_LOG")
                .unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a log file, a pipe or the journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("brevetd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brevetd: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::User { command } => user(command).await,
        Command::Init {
            data_dir,
            listen,
            db,
            json,
        } => {
            let out = init::init_with_db(&DataDir::new(data_dir), &listen, &db).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out)
                        .map_err(|e| Error::Internal(e.to_string()))?
                );
            } else {
                println!(
                    "initialised {} (database {})\n\nadmin password: {}\nadmin TOTP:     {}\nCA file:        {}\nserver URL:     {}\n\nSave the password and TOTP URI now: they are not shown again.\nStart the server with: brevetd serve --data-dir {}",
                    out.data_dir,
                    brevet_server::db_url::redact(&db),
                    out.admin_password,
                    out.totp_uri,
                    out.ca_file,
                    out.server_url,
                    out.data_dir
                );
            }
            Ok(())
        }
        Command::Serve {
            data_dir,
            listen,
            db,
        } => {
            let running = serve::start(
                &DataDir::new(data_dir),
                serve::Options {
                    listen,
                    db,
                    clock: clock::system(),
                },
            )
            .await?;
            eprintln!("brevetd: serving {}", running.url());
            wait_for_signal().await;
            running.stop().await;
            Ok(())
        }
        Command::Quickstart {
            data_dir,
            listen,
            json,
        } => {
            let dir = DataDir::new(data_dir);
            let demo = if dir.is_initialised() {
                eprintln!(
                    "brevetd: {} already exists; serving it (delete it for a fresh demo)",
                    dir.root.display()
                );
                None
            } else {
                Some(quickstart::prepare(&dir, &listen).await?)
            };
            let running = serve::start(
                &dir,
                serve::Options {
                    listen: Some(listen),
                    db: None,
                    clock: clock::system(),
                },
            )
            .await?;
            let agent = start_demo_agent(&dir, &running.url(), demo.as_ref());
            if let Some(demo) = demo {
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&demo)
                            .map_err(|e| Error::Internal(e.to_string()))?
                    );
                } else {
                    println!("{}", quickstart::next_steps(&demo, "brevet"));
                }
            } else {
                eprintln!("brevetd: serving {}", running.url());
            }
            wait_for_signal().await;
            drop(agent);
            running.stop().await;
            Ok(())
        }
    }
}

/// Starts the sandboxed demo agent (enrolling it on first run). Without the agent binary the
/// demo still works; grants are then only visible through the API.
fn start_demo_agent(
    dir: &DataDir,
    url: &str,
    demo: Option<&quickstart::Demo>,
) -> Option<demo_agent::DemoAgent> {
    let Some(bin) = demo_agent::agent_binary() else {
        eprintln!(
            "brevetd: brevet-agent is not next to brevetd (run `cargo build --release`); the demo runs without an agent"
        );
        return None;
    };
    let enrolled = dir.root.join("agent-state/enrollment.json").exists();
    let token = demo.map(|d| d.enroll_token.as_str());
    if !enrolled && token.is_none() {
        eprintln!(
            "brevetd: the demo agent was never enrolled; delete the demo directory for a fresh one"
        );
        return None;
    }
    match demo_agent::start(
        &bin,
        &dir.root,
        url,
        &dir.ca_cert(),
        token.filter(|_| !enrolled),
    ) {
        Ok(agent) => {
            eprintln!(
                "brevetd: sandboxed agent enforcing in {} (log: {})",
                agent.root.display(),
                agent.log.display()
            );
            Some(agent)
        }
        Err(e) => {
            eprintln!("brevetd: the demo agent did not start: {e}");
            None
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
    eprintln!("brevetd: stopping");
}
