//! The `callverify` command: parse the CLI, load configuration, start tracing, serve.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

/// mimalloc rather than glibc malloc: a keypress webhook makes about a hundred small
/// allocations (hyper, axum, the Redis client, tracing), and under load about a tenth of the
/// server's instructions were in glibc `malloc`/`free` (callgrind, see docs/PERFORMANCE.md).
/// Built with `no_thp`: mimalloc's transparent-huge-page hint on its arenas raised idle RSS from
/// ~18 to ~35 MiB (target < 30 MiB); without it, ~22 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// A complete "call me" verification against the built-in carrier simulator (needs Redis).
    Demo {
        /// What the simulated callee does.
        #[arg(long, value_enum, default_value = "approve")]
        scenario: callverify::demo::Scenario,
        /// The provider whose dialect the simulated carrier speaks.
        #[arg(long, value_enum, default_value = "twilio")]
        provider: callverify::demo::DemoProvider,
        /// Prompt language (en-US, nl-NL).
        #[arg(long, default_value = "en-US")]
        locale: String,
        /// Serve a Security-info page with a virtual phone instead, until Ctrl-C.
        #[arg(long)]
        web: bool,
        /// Where `--web` serves the page.
        #[arg(long, default_value = "127.0.0.1:8090", requires = "web")]
        listen: std::net::SocketAddr,
        #[arg(long, env = "CALLVERIFY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the carrier simulator alone: a Twilio-compatible Calls API that plays calls.
    Simulator {
        #[arg(long, default_value = "127.0.0.1:4010")]
        listen: std::net::SocketAddr,
        /// The account the Calls API accepts (Basic-auth user).
        #[arg(long, default_value = "AC00000000000000000000000000000000")]
        account_sid: String,
        /// Basic-auth password and webhook signing key.
        #[arg(long, env = "CALLVERIFY_SIMULATOR_AUTH_TOKEN")]
        auth_token: String,
        /// Scale of simulated delays (1.0 = real time).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
    },
    /// Print the SHA-256 of an API key, as `portal_keys_sha256` / `admin_keys_sha256` expect.
    HashKey { key: String },
    /// Microsoft Entra ID External MFA (docs/ENTRA.md).
    ExternalMfa {
        #[command(subcommand)]
        command: ExternalMfaCommand,
    },
    /// Load and validate the configuration, then print it (secrets redacted) and each
    /// External MFA tenant's discovery URL.
    CheckConfig {
        #[arg(long, env = "CALLVERIFY_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ExternalMfaCommand {
    /// Write a new RSA signing key (PKCS#8 PEM, mode 0600) and its self-signed certificate
    /// into DIR, for `[external_mfa] signing_key_file` / `signing_cert_file`.
    Keygen { dir: PathBuf },
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs to stderr; stdout is for command output (`check-config`, `hash-key`, the demo).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        // Same output as the default field formatter, cheaper for plain strings (request spans).
        builder
            .fmt_fields(callverify::ops::log_fields::LeanFields)
            .init();
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
            print_out(&format!("{}\n", callverify::api::auth::hash_key(&key)))
        }
        Command::Demo {
            web: true,
            listen,
            config,
            ..
        } => {
            let config = callverify::config::Config::load(config.as_deref())?;
            let listener = TcpListener::bind(listen).await?;
            callverify::demo::web::run(listener, config, shutdown_signal()).await
        }
        Command::Demo {
            scenario,
            provider,
            locale,
            config,
            ..
        } => {
            let config = callverify::config::Config::load(config.as_deref())?;
            let options = callverify::demo::DemoOptions {
                scenario,
                provider,
                locale,
                config,
            };
            if callverify::demo::run(options).await? {
                Ok(())
            } else {
                Err("the call did not end as the scenario expects".into())
            }
        }
        Command::Simulator {
            listen,
            account_sid,
            auth_token,
            time_scale,
        } => {
            init_tracing(false);
            let listener = TcpListener::bind(listen).await?;
            tracing::info!(listen = %listener.local_addr()?, "carrier simulator serving");
            let options = callverify_simulator::SimulatorOptions {
                listen,
                account_sid,
                auth_token,
                time_scale,
                dialect: callverify_simulator::Dialect::Twilio,
                signing_key: String::new(),
            };
            callverify_simulator::serve(listener, options).await?;
            Ok(())
        }
        Command::CheckConfig { config } => {
            let config = callverify::config::Config::load(config.as_deref())?;
            let mut out = format!("{config:#?}\n");
            for (tenant, url) in callverify::external_mfa::discovery_urls(&config) {
                out.push_str(&format!(
                    "external MFA discovery URL of tenant {tenant}: {url}\n"
                ));
            }
            print_out(&out)
        }
        Command::ExternalMfa {
            command: ExternalMfaCommand::Keygen { dir },
        } => {
            let (key, cert) = callverify::external_mfa::keygen::write(&dir)?;
            print_out(&format!(
                "signing_key_file = {:?}\nsigning_cert_file = {:?}\n",
                key.display().to_string(),
                cert.display().to_string()
            ))
        }
        Command::Serve { config } => {
            let config = callverify::config::Config::load(config.as_deref())?;
            init_tracing(config.server.log_format == callverify::config::LogFormat::Json);
            let listener = TcpListener::bind(config.server.listen).await?;
            let listen = listener.local_addr()?;
            let redis_urls = config.redis.urls();
            let state = callverify::build_state(config).await?;
            // "callverify serving" once Redis answers; requests are served meanwhile.
            let ready =
                callverify::readiness::announce_when_ready(state.store.clone(), redis_urls, listen);
            tokio::spawn(ready);
            callverify::serve(listener, state, shutdown_signal()).await?;
            Ok(())
        }
    }
}

/// Writes command output to stdout. A reader that went away (`callverify check-config | head
/// -1`) is not an error: `println!` would panic on the broken pipe.
fn print_out(text: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
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
