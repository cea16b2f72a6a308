//! `orglink-sandbox`: serves the Salesforce and Zendesk simulators, each on its own loopback port.
//!
//! `orglink-sandbox [serve] --salesforce-port 0 --zendesk-port 0 [--scenario FILE]` binds 127.0.0.1
//! only, prints ONE JSON line of base URLs first on stdout
//! (`{"salesforce":"http://127.0.0.1:P","zendesk":"http://127.0.0.1:Q"}`) and serves until SIGTERM or
//! ctrl-c, or until stdin reaches end-of-file when `--exit-on-stdin-eof` is given (so a test harness
//! that dies can't leave the sandbox running). It then exits 0.
//!
//! `orglink-sandbox generate --accounts N --seed S --out-dir DIR` (or `--scenario FILE --truth
//! FILE`) writes a generated scenario and its ground truth (docs/generator.md), then prints one
//! JSON line saying what it wrote.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use orglink_sandbox::generate;
use orglink_sandbox::salesforce::{self, SalesforceOptions};
use orglink_sandbox::scenario::Scenario;
use orglink_sandbox::zendesk::{self, ZendeskOptions};
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(
    name = "orglink-sandbox",
    about = "Salesforce and Zendesk simulators for orglink's tests, demo and benchmarks",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve`'s flags are accepted without the subcommand name too (`serve` is the default).
    #[command(flatten)]
    serve: ServeArgs,
}

// Parsed once at start: the size of the serve variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Serve both simulators (the default).
    Serve(ServeArgs),
    /// Write a generated messy world (scenario.json) and its ground truth (truth.json).
    Generate(generate::GenerateArgs),
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// Loopback port of the Salesforce simulator (0 picks a free port).
    #[arg(long, default_value_t = 0)]
    salesforce_port: u16,
    /// Loopback port of the Zendesk simulator (0 picks a free port).
    #[arg(long, default_value_t = 0)]
    zendesk_port: u16,
    /// Scenario JSON to seed both simulators with (DESIGN.md "Scenario files").
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Seed of the fault-injection random generators (a fault plan posted later brings its own).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also stop when standard input reaches end-of-file (for harnesses that hold a pipe open).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    #[command(flatten)]
    salesforce: SalesforceOptions,
    #[command(flatten)]
    zendesk: ZendeskOptions,
}

/// Why the sandbox could not start; each says what to fix.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("cannot read scenario file {path}: {source}")]
    ReadScenario {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario file {path} is not a valid scenario: {source}")]
    ParseScenario {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot listen on 127.0.0.1:{port} for {system}: {source} (choose another port, or 0)")]
    Bind {
        system: &'static str,
        port: u16,
        source: std::io::Error,
    },
}

fn main() {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Generate(args)) => match generate::run(&args) {
            Ok(written) => {
                println!("{}", serde_json::to_string(&written).expect("summary"));
                return;
            }
            Err(e) => {
                eprintln!("orglink-sandbox generate: {e}");
                std::process::exit(2);
            }
        },
        None => cli.serve,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(args)) {
        eprintln!("orglink-sandbox: {e}");
        std::process::exit(2);
    }
}

async fn serve(mut args: ServeArgs) -> Result<(), StartError> {
    let scenario = match &args.scenario {
        Some(path) => load_scenario(path)?,
        None => Scenario::default(),
    };
    args.zendesk.fault_seed = args.seed;
    args.salesforce.fault_seed = args.seed;

    let sf_listener = bind("salesforce", args.salesforce_port).await?;
    let zd_listener = bind("zendesk", args.zendesk_port).await?;
    let sf_addr = sf_listener.local_addr().expect("bound address");
    let zd_addr = zd_listener.local_addr().expect("bound address");

    let sf_app = salesforce::app(args.salesforce.clone(), scenario.salesforce);
    let zd_app = zendesk::app(args.zendesk.clone(), scenario.zendesk);

    // The harness reads this line to learn the ports: print it before anything else, flushed.
    let urls = serde_json::json!({
        "salesforce": format!("http://{sf_addr}"),
        "zendesk": format!("http://{zd_addr}"),
    });
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{urls}");
        let _ = out.flush();
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sf = tokio::spawn(run(sf_listener, sf_app, stop_rx.clone()));
    let zd = tokio::spawn(run(zd_listener, zd_app, stop_rx));

    shutdown_signal(args.exit_on_stdin_eof).await;
    let _ = stop_tx.send(true);
    let _ = sf.await;
    let _ = zd.await;
    Ok(())
}

fn load_scenario(path: &PathBuf) -> Result<Scenario, StartError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartError::ReadScenario {
        path: path.clone(),
        source,
    })?;
    Scenario::from_json(&text).map_err(|source| StartError::ParseScenario {
        path: path.clone(),
        source,
    })
}

async fn bind(system: &'static str, port: u16) -> Result<TcpListener, StartError> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|source| StartError::Bind {
            system,
            port,
            source,
        })
}

async fn run(
    listener: TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let served = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
    if let Err(e) = served.await {
        eprintln!("orglink-sandbox: server error: {e}");
    }
}

async fn shutdown_signal(exit_on_stdin_eof: bool) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let stdin_eof = async {
        if !exit_on_stdin_eof {
            return std::future::pending::<()>().await;
        }
        // Blocking read on a dedicated thread: tokio's stdin would keep the runtime from exiting.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
        _ = stdin_eof => {},
    }
}
