//! The `sluice` command: parses arguments, calls the library, prints. Behaviour lives in the crates.

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
    let code = match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            render::error(&e);
            e.exit_code()
        }
    };
    // Do not wait for background connection tasks: everything that matters is committed.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
