//! `validate`: loads every connector file and prints each problem as `file: key: what is wrong`.

use std::process::ExitCode;

use super::args::{ConnectorsDir, env, print_errors};
use crate::config;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: ConnectorsDir,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match config::load_dir(&args.dir.connectors, &env) {
        Ok(connectors) => {
            for c in &connectors {
                println!("{}: ok (connector `{}`)", c.file.display(), c.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_errors(&errors);
            Ok(ExitCode::FAILURE)
        }
    }
}
