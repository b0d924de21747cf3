//! The `sluice` command: parses arguments, calls the library, prints. Behaviour lives in the crates.

/// Human output: every line passes through `printable`, so names and server text cannot drive the
/// terminal (JSON is escaped by serde already).
macro_rules! outln {
    ($($t:tt)*) => { println!("{}", sluice_core::error::printable(&format!($($t)*))) };
}
macro_rules! out {
    ($($t:tt)*) => { print!("{}", sluice_core::error::printable(&format!($($t)*))) };
}
macro_rules! errln {
    ($($t:tt)*) => { eprintln!("{}", sluice_core::error::printable(&format!($($t)*))) };
}

mod cli;
mod connect;
mod lint;
mod render;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    render::init_logging(cli.global.verbose, cli.global.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // `rehearse` handles Ctrl-C itself: it must drop its scratch databases before it exits.
    let own_interrupt = matches!(cli.command, cli::Command::Rehearse(_));
    let code = runtime.block_on(async {
        tokio::select! {
            r = cli::run(cli) => match r {
                Ok(code) => code,
                Err(e) => {
                    render::error(&e);
                    e.exit_code()
                }
            },
            code = interrupted(), if !own_interrupt => code,
        }
    });
    // Do not wait for background connection tasks: everything that matters is committed.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}

/// Ctrl-C (SIGINT) or SIGTERM: the run stops where it is. Dropping the run closes its connections, so
/// the server rolls back the statement in flight and releases the run lock; what was committed stays
/// recorded and the same command resumes from there. Exit 130 / 143 as shells report signals.
async fn interrupted() -> i32 {
    #[cfg(unix)]
    let (name, code) = {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => ("interrupted (Ctrl-C)", sluice_core::error::exit::INTERRUPTED),
            _ = term.recv() => ("terminated (SIGTERM)", sluice_core::error::exit::TERMINATED),
        }
    };
    #[cfg(not(unix))]
    let (name, code) = {
        let _ = tokio::signal::ctrl_c().await;
        (
            "interrupted (Ctrl-C)",
            sluice_core::error::exit::INTERRUPTED,
        )
    };
    eprintln!(
        "error: {name}: sluice stopped; the statement in flight is abandoned and rolled back by the server \
         (a MariaDB/MySQL DDL already sent may still finish there), everything committed before stays recorded\n\
         help: run the same command again to resume; `sluice status` shows where each migration stands"
    );
    code
}
