//! The command line itself: help, usage errors and their exit code; nothing here needs a database.

use clap::CommandFactory;
use molteniron::cli::Cli;

use crate::support::{assert_clean, molteniron_cmd};

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let out = molteniron_cmd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in [
        "migrate",
        "roles",
        "import",
        "export",
        "add",
        "allocate",
        "release",
        "renew",
        "reap",
        "clean",
        "maintenance",
        "get-field",
        "set-field",
        "status",
        "history",
        "remove",
        "delete_db",
        "add_baremetal",
        "add_keyvalue_pairs",
        "add_json_blob",
        "status_baremetal",
    ] {
        assert!(
            help.contains(&format!("  {command} ")),
            "--help lacks {command}:\n{help}"
        );
    }
    assert!(help.contains("Exit codes:"));
}

#[test]
fn usage_errors_exit_2_with_one_prefixed_line_first() {
    for args in [
        &["allocate"][..],
        &["frobnicate"],
        &["allocate", "job", "zero"],
        &["allocate", "job", "0"],
        &["maintenance", "n1"],
    ] {
        let out = molteniron_cmd().args(args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("molteniron: error: "), "{args:?}: {err}");
        assert_clean(&err);
    }
}

#[test]
fn global_options_work_before_and_after_the_subcommand() {
    // Both spellings reach the database step (and fail there: nothing listens on this socket).
    for args in [
        &["--database-url", "host=/nonexistent port=1", "status"][..],
        &["status", "--database-url", "host=/nonexistent port=1"],
        &[
            "-o",
            "json",
            "status",
            "--database-url",
            "host=/nonexistent port=1",
        ],
    ] {
        let out = molteniron_cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(5), "{args:?}");
    }
}

#[test]
fn commands_that_need_no_database_never_connect() {
    // A bad file is reported before any connection is attempted (the URL points nowhere).
    let out = molteniron_cmd()
        .args([
            "--database-url",
            "host=/nonexistent port=1",
            "import",
            "/nonexistent/nodes.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("reading /nonexistent/nodes.yaml"), "{err}");
}

#[test]
fn bare_invocation_shows_help_on_stderr_with_exit_2() {
    let out = molteniron_cmd().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: molteniron"));
}

#[test]
fn usage_errors_never_echo_a_database_password() {
    // `--database-url=` with a space makes the URL a stray argument, which clap echoes.
    let out = molteniron_cmd()
        .args(["--database-url=", "postgres://mi:hunter2x@db/x", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("hunter2x"), "{err}");
    assert!(err.contains("postgres://mi:***@db/x"), "{err}");
}

#[test]
fn output_formats_a_command_does_not_offer_are_usage_errors() {
    for args in [
        &["import", "x.yaml", "-o", "json"][..],
        &["remove", "n1", "-o", "csv"],
        &["migrate", "-o", "env"],
        &["status", "-o", "env"],
        &["status", "-t", "json"],
        &["status", "-t", "csv", "-o", "json"],
        &["allocate", "job", "-o", "csv"],
    ] {
        let out = molteniron_cmd().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every subcommand given an argument that is not UTF-8 (as a positional, and as the value of its first
/// option that takes one): one `molteniron: error:` line first, exit 2, never a panic. A file path is the
/// exception: a non-UTF-8 file name is a real file name, so `import` reads it (and fails with exit 1).
#[test]
fn arguments_that_are_not_utf8_are_usage_errors_not_panics() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"x\xff");
    let mut runs = 0;
    let mut cli = Cli::command();
    cli.build(); // subcommands' arguments are deferred until built
    for sub in cli.get_subcommands() {
        let name = sub.get_name().to_owned();
        let option = sub
            .get_arguments()
            .find(|a| a.get_long().is_some() && a.get_action().takes_values())
            .and_then(|a| a.get_long())
            .map(|long| format!("--{long}"));
        let mut argv: Vec<Vec<&OsStr>> = vec![vec![OsStr::new(&name), bad]];
        if let Some(option) = &option {
            argv.push(vec![OsStr::new(&name), OsStr::new(option), bad]);
        }
        for args in argv {
            let out = molteniron_cmd()
                .env("MOLTENIRON_DATABASE_URL", "postgres://nobody@127.0.0.1:1/x")
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_clean(&stderr);
            assert!(
                stderr.starts_with("molteniron: error: "),
                "{args:?}: {stderr}"
            );
            let code = out.status.code();
            let is_path = name == "import" && args.len() == 2;
            assert_eq!(
                code,
                Some(if is_path { 1 } else { 2 }),
                "{args:?}: {stderr}"
            );
            runs += 1;
        }
    }
    assert!(runs > 30, "only {runs} runs");
}
