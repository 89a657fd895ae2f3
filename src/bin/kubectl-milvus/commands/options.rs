//! `kubectl milvus options`: the flags inherited by all commands.

use std::io::Write;

use clap::Arg;

use kubectl_milvus::error::Error;

pub const ABOUT: &str = "Print the list of flags inherited by all commands";

pub const LONG_ABOUT: &str = "Print the list of flags inherited by all commands.";

pub const EXAMPLES: &str = "\
Examples:
  # Print the flags inherited by all commands
  kubectl milvus options";

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(globals: Vec<Arg>, out: &mut dyn Write) -> Result<(), Error> {
    out.write_all(crate::help::render_options(globals).as_bytes())?;
    Ok(())
}
