//! The `callverify` command: parse the CLI, load configuration, start tracing, serve.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "callverify",
    version,
    about = "Phone-call verification (IVR) server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file (TOML), layered over the defaults.
        #[arg(long, env = "CALLVERIFY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the SHA-256 of an API key, as `portal_keys_sha256` / `admin_keys_sha256` expect.
    HashKey { key: String },
    /// Load and validate the configuration, then print it (secrets redacted).
    CheckConfig {
        #[arg(long, env = "CALLVERIFY_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callverify: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match cli.command {
        Command::HashKey { key } => {
            println!("{}", callverify::api::auth::hash_key(&key));
            Ok(())
        }
        Command::CheckConfig { config } => {
            let config = callverify::config::Config::load(config.as_deref())?;
            println!("{config:#?}");
            Ok(())
        }
        Command::Serve { config } => {
            let config = callverify::config::Config::load(config.as_deref())?;
            init_tracing(config.server.log_format == "json");
            let listener = TcpListener::bind(config.server.listen).await?;
            tracing::info!(listen = %listener.local_addr()?, "callverify serving");
            let state = callverify::build_state(config).await?;
            callverify::serve(listener, state, shutdown_signal()).await?;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
