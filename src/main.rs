//! The `cds-redis-operator` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use cds_redis_operator::cli::{Cli, Command};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { kind } => {
            let crds = cds_redis_operator::crd::crds();
            let chosen: Vec<_> = crds
                .into_iter()
                .filter(|c| kind.as_ref().is_none_or(|k| &c.spec.names.kind == k))
                .collect();
            if chosen.is_empty() {
                eprintln!(
                    "no CRD of kind {:?}: RedisInstance, RedisBackup, RedisBackupSchedule, ProviderConfig or ClusterProviderConfig",
                    kind.unwrap_or_default()
                );
                return ExitCode::FAILURE;
            }
            for crd in chosen {
                print!("{}", cds_redis_operator::crd::crd_yaml_of(crd));
            }
            ExitCode::SUCCESS
        }
        Command::Run(config) => {
            tune_malloc();
            run_async(async move {
                init_logging();
                tokio::spawn(release_free_memory());
                cds_redis_operator::controller::run(*config).await
            })
        }
        Command::Simulator(config) => run_async(async move {
            init_logging();
            cds_redis_operator::simulator::run(*config).await
        }),
        Command::Cds(args) => run_async(cds_redis_operator::cli::cds::run(*args)),
    }
}

fn run_async<E: Into<Box<dyn std::error::Error>>>(fut: impl std::future::Future<Output = Result<(), E>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cds_redis_operator::error_chain(&*e.into()));
            ExitCode::FAILURE
        }
    }
}

/// Tunes glibc's allocator for a long-running process with large, short-lived buffers:
/// - every thread that allocates gets its own malloc arena, which inflates the resident set of a
///   multi-threaded async process for no gain: two arenas are plenty for the operator;
/// - after a large buffer (a cloud listing of thousands of instances) is freed, glibc raises its
///   mmap threshold so the next ones come from the heap, where they fragment it and stay
///   resident; a fixed threshold keeps buffers of 256 KiB and more in mmap, returned on free.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before the runtime starts other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Every 10 s, hands the allocator's free pages back to the OS. glibc returns memory only from
/// the top of its heaps; the pages freed in the middle (each listing, watch page and request
/// leaves some) stay resident until trimmed.
async fn release_free_memory() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init()
    } else {
        builder.json().init()
    }
}
