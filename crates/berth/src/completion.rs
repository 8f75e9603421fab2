//! `completion bash|zsh|fish`: the shell's completion script for every berth command and flag,
//! generated from the same command-line definition the parser uses (clap_complete), so it can
//! never list a flag berth does not take.

use crate::{Cli, CliResult};
use clap::{Args, CommandFactory, ValueEnum};

/// The shells a script can be made for.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args)]
pub struct CompletionArgs {
    /// The shell to write the script for
    shell: Shell,
}

/// Writes the script to stdout (`berth completion bash > /etc/bash_completion.d/berth`).
pub fn completion(a: CompletionArgs) -> CliResult {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(0)
}
