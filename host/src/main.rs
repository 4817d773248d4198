//! `redwasm`: the command-line entry point. Thin on purpose: everything lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// glibc malloc showed up at ~14% of the host's CPU under load (many small, short-lived
/// allocations across threads); mimalloc handles that pattern better.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs redwasm's WebAssembly components (and any Spin HTTP component) with Redis.
#[derive(Parser)]
#[command(name = "redwasm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every component of a Spin manifest over HTTP.
    Serve {
        /// The Spin manifest (`spin_manifest_version = 2`).
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// Address to listen on [default: the manifest's `[application.tool.redwasm] listen`,
        /// else 127.0.0.1:3000].
        #[arg(long, env = "REDWASM_LISTEN")]
        listen: Option<SocketAddr>,
        /// Redis to use; when absent the host starts and owns a local redis-server.
        #[arg(long, env = "REDIS_URL")]
        redis_url: Option<String>,
        /// Where the owned redis-server keeps its data (AOF/RDB).
        #[arg(long, default_value = ".redwasm/redis")]
        redis_data_dir: PathBuf,
        /// Call every component through wasi:http, exactly as Spin does, even those that
        /// export the one-call `redwasm:http/handler`.
        #[arg(long, env = "REDWASM_WASI_HTTP_ONLY")]
        wasi_http_only: bool,
    },
    /// Run only the manifest's queue-poll triggers (no HTTP): one of many worker processes
    /// against a shared Redis.
    Worker {
        /// The Spin manifest (`spin_manifest_version = 2`).
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// The shared Redis (required: workers never start their own).
        #[arg(long, env = "REDIS_URL")]
        redis_url: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve {
            manifest,
            listen,
            redis_url,
            redis_data_dir,
            wasi_http_only,
        } => runtime.block_on(async move {
            let mut options = redwasm::serve::AppOptions::new(manifest);
            options.redis_url = redis_url;
            options.redis_data_dir = redis_data_dir;
            options.wasi_http_only = wasi_http_only;
            redwasm::serve::serve(options, listen, redwasm::serve::shutdown_signal()).await
        }),
        Command::Worker {
            manifest,
            redis_url,
        } => runtime.block_on(async move {
            let mut options = redwasm::serve::AppOptions::new(manifest);
            options.redis_url = redis_url;
            let manifest_redis = redwasm::manifest::Manifest::load(&options.manifest)?
                .host
                .redis_url;
            if options.redis_url.is_none() && manifest_redis.is_none() {
                anyhow::bail!(
                    "a worker needs the Redis its queues live in: set REDIS_URL (or --redis-url)"
                );
            }
            redwasm::serve::work(options, redwasm::serve::shutdown_signal()).await
        }),
    }
}
