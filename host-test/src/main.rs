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
    /// Send files as request bodies and print one JSON verdict per line.
    Check(cli::check::CheckArgs),
    /// Replay a JSONL scenario on a virtual clock and print one JSON result per request.
    Replay(cli::replay::ReplayArgs),
    /// Measure throughput, per-request cost and guest memory through the real wasm.
    Bench(cli::bench::BenchArgs),
    /// Build, push and pull the plugin as an OCI image.
    Oci(oci::OciCommand),
}

/// clap's error as one line: its first paragraph (which may continue on
/// indented lines, as the list of missing arguments does), without the usage
/// and tips that follow.
fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let line = first.join(" ");
    let line = line.trim_start_matches("error: ");
    if line.is_empty() {
        "usage error".to_string()
    } else {
        line.to_string()
    }
}

/// The command names of the help clap would have printed for a missing
/// subcommand (`demo, check, replay, bench, oci`, or those of `oci`).
fn usage_commands(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let names: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .collect();
    names.join(", ")
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // A usage error like any other: one line, naming the commands.
                eprintln!(
                    "json-sanitizer-host: a command is required: {} (--help for more)",
                    usage_commands(&e)
                );
                std::process::exit(2);
            }
            eprintln!("json-sanitizer-host: {}", usage_error_line(&e));
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
