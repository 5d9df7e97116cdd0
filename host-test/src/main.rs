//! `json-sanitizer-host`: try a configuration against real payloads, replay
//! scenarios, run the demo and the benchmarks, all through the real plugin.

mod cli;

use clap::{Parser, Subcommand};
use json_sanitizer_host::oci;

/// Runs the json-sanitizer proxy-wasm plugin outside Envoy.
#[derive(Parser)]
#[command(name = "json-sanitizer-host", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the example configurations against example requests and print a table.
    Demo(cli::demo::DemoArgs),
    /// Send files as POST bodies and print one JSON verdict per line.
    Check(cli::check::CheckArgs),
    /// Replay a JSONL scenario on a virtual clock and print one JSON result per request.
    Replay(cli::replay::ReplayArgs),
    /// Measure throughput, per-request cost and guest memory through the real wasm.
    Bench(cli::bench::BenchArgs),
    /// Build, push and pull the plugin as an OCI image.
    Oci(oci::OciCommand),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                std::process::exit(
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                );
            }
            let msg = e.render().to_string();
            let first = msg
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("usage error");
            eprintln!(
                "json-sanitizer-host: {}",
                first.trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
    };
    let result = match cli.command {
        Command::Demo(a) => cli::demo::run(a),
        Command::Check(a) => cli::check::run(a),
        Command::Replay(a) => cli::replay::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Oci(a) => oci::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("json-sanitizer-host: {}", cli::one_line(&e));
            std::process::exit(2);
        }
    }
}
