//! `brevetd`: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use brevet_server::datadir::DataDir;
use brevet_server::{Error, clock, init, quickstart, serve};
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BREVET_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
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
        Command::Init {
            data_dir,
            listen,
            json,
        } => {
            let out = init::init(&DataDir::new(data_dir), &listen).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out)
                        .map_err(|e| Error::Internal(e.to_string()))?
                );
            } else {
                println!(
                    "initialised {}\n\nadmin password: {}\nadmin TOTP:     {}\nCA file:        {}\nserver URL:     {}\n\nSave the password and TOTP URI now: they are not shown again.\nStart the server with: brevetd serve --data-dir {}",
                    out.data_dir,
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
            running.stop().await;
            Ok(())
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
