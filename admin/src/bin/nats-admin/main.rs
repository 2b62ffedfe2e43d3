//! `nats-admin`: cluster administration over the system account (see `--help`).
//!
//! - [`args`]: the command line; [`connect`]: flags, environment and context file to a
//!   client, and the one-line errors; [`commands`]: what each command does; [`queues`]: the
//!   queue commands; [`render`]:
//!   tables and JSON.
//!
//! Every failure ends as one line on stderr and exit code 1 (`health` on an unhealthy cluster
//! too, after its table), never a backtrace. Usage errors exit 2, as clap does.

mod args;
mod commands;
mod connect;
mod queues;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A bug must still end as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("nats-admin: internal error: {info}");
    }));
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        if cli.command.is_queue_command() {
            let client = connect::client(&cli.conn).await?;
            let js = jetstream::Context::new(client.clone());
            let outcome = queues::run(js, &cli.command, cli.json).await;
            let _ = client.close().await;
            return outcome;
        }
        let sys = connect::connect(&cli.conn).await?;
        let outcome = commands::run(&sys, &cli.command, cli.json).await;
        let _ = sys.client().close().await;
        outcome
    });
    match result {
        Ok(commands::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Unhealthy) => fail("the cluster is not healthy (see above)"),
        Err(message) => fail(&message),
    }
}

/// One line on stderr, exit code 1.
fn fail(message: &str) -> ExitCode {
    let line = message.replace(['\n', '\r'], " ");
    eprintln!("nats-admin: error: {line}");
    ExitCode::from(1)
}
