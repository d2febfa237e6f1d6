use std::process::ExitCode;

use clap::Parser;

use escalation_gate::cli::{self, Cli};

fn main() -> ExitCode {
    let command = Cli::parse().command;
    command.start_logs();
    match command.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
