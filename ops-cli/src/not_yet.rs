//! Commands that are designed but not built yet: they are listed in
//! `--help` and fail loudly instead of pretending to work.

use std::process::ExitCode;

/// Whatever arguments a future command will take, accepted and ignored.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

/// Exit code of a command that does not exist yet.
const NOT_YET: u8 = 2;

pub fn report(command: &str, issue: u32) -> ExitCode {
    eprintln!("error: `bazaar {command}` is not yet implemented (issue {issue})");
    ExitCode::from(NOT_YET)
}
