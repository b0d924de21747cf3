//! The `sluice` command: parses arguments, calls the library, prints. Behaviour lives in the crates.

/// Human output: every line passes through `printable`, so names and server text cannot drive the
/// terminal (JSON is escaped by serde already).
macro_rules! outln {
    ($($t:tt)*) => { $crate::stdout_text(&format!("{}\n", sluice_core::error::printable(&format!($($t)*)))) };
}
macro_rules! out {
    ($($t:tt)*) => { $crate::stdout_text(&sluice_core::error::printable(&format!($($t)*))) };
}

/// Every write to stdout: a reader that stopped early (`sluice status | head`) ends the process
/// quietly with exit 0, as other command-line tools do; other errors are returned.
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

/// Text for `outln!`/`out!`: an error other than a closed pipe is a panic, as with `println!`.
fn stdout_text(text: &str) {
    if let Err(e) = write_stdout(text.as_bytes()) {
        panic!("writing to stdout: {e}");
    }
}
macro_rules! errln {
    ($($t:tt)*) => { $crate::stderr_line(&sluice_core::error::printable(&format!($($t)*))) };
}

/// One line to stderr. A reader that went away (`sluice up 2>&1 | head`, a dead log pipe) must not
/// stop a run between two steps of a migration: the line is dropped and the work goes on.
pub(crate) fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

mod cli;
mod connect;
mod demo;
mod fleet;
mod lint;
mod refs;
mod render;

fn main() {
    let cli = cli::parse().unwrap_or_else(|e| cli::explain_parse_error(e).exit());
    render::init_logging(cli.global.verbose, cli.global.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // `rehearse` and `demo` handle Ctrl-C themselves: they must drop their scratch databases
    // before they exit.
    let own_interrupt = matches!(
        cli.command,
        cli::Command::Rehearse(_) | cli::Command::Demo { .. }
    );
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
