//! `completions` and `man`: shell completions (clap_complete) and man pages (clap_mangen), generated
//! from the command line's own clap definitions, so they always describe this binary. Neither reads the
//! config's database nor connects. `cli` hands in the clap command: this layer may not reach up to it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;

use crate::output;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash (e.g. to /usr/share/bash-completion/completions/molteniron), zsh (to a
    /// directory of $fpath as _molteniron), fish (to ~/.config/fish/completions/molteniron.fish), elvish
    /// or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

impl CompletionsArgs {
    /// Prints the completion script of `command` for the shell.
    pub fn run(&self, mut command: clap::Command) -> Result<()> {
        let name = command.get_name().to_owned();
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command, name, &mut script);
        output::text(&String::from_utf8_lossy(&script))
    }
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages to (created if missing): molteniron.1 and one
    /// molteniron-SUBCOMMAND.1 per subcommand, e.g. molteniron-allocate.1.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

impl ManArgs {
    /// Writes a man page for `command` and one for each of its visible subcommands, named
    /// `NAME-SUBCOMMAND.1`, into the directory, replacing pages already there; prints nothing.
    pub fn run(&self, command: clap::Command) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let mut command = command.disable_help_subcommand(true);
        // Builds every deferred subcommand, and names each `molteniron-SUBCOMMAND`.
        command.build();
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            write_page(sub.clone(), &self.dir)?;
        }
        write_page(command, &self.dir)
    }
}

/// Renders `command`'s page and writes it to `dir`, under the name clap_mangen gives it.
fn write_page(command: clap::Command, dir: &Path) -> Result<()> {
    let man = clap_mangen::Man::new(command);
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .and_then(|()| std::fs::write(&path, page))
        .with_context(|| format!("writing the man page {}", path.display()))
}
