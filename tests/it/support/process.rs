//! Running the `molteniron` binary: a command with nothing from the environment, and the check that no
//! output ever shows a panic.

use assert_cmd::Command;

/// `molteniron` with no database and no config from the environment.
pub fn molteniron_cmd() -> Command {
    Command::from_std(molteniron_std())
}

/// [`molteniron_cmd`] as a plain `std::process::Command`.
pub fn molteniron_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_molteniron"));
    for var in [
        "DATABASE_URL",
        "MOLTENIRON_DATABASE_URL",
        "MOLTENIRON_CONFIG",
        "RUST_BACKTRACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("MOLTENIRON_CONFIG", "/dev/null");
    cmd
}

/// Asserts that output shows no panic or backtrace.
pub fn assert_clean(text: &str) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!text.contains(bad), "output contains {bad:?}: {text}");
    }
}
