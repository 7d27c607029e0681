//! `completions` and the hidden `man`: generated from the clap definitions, without a database. The
//! bash script is checked by `bash -n`, every man page is rendered by man-db's `man -l` (which
//! scripts/test installs) without a warning, and each page lists its subcommand's options.

use std::io::Write;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use molteniron::cli::Cli;

use crate::support::{assert_clean, molteniron_cmd};

/// `molteniron ARGS` pointed at a database that cannot be reached: these commands must not try.
fn run_without_database(args: &[&str]) -> (i32, String, String) {
    let out = molteniron_cmd()
        .env(
            "MOLTENIRON_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env("PGHOST", "/nonexistent")
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The visible subcommands, with their clap definitions built (deferred arguments included); `help`
/// has no page.
fn subcommands() -> Vec<clap::Command> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    cli.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect()
}

#[test]
fn completions_for_bash_zsh_and_fish_name_the_subcommands_without_a_database() {
    for (shell, opening) in [
        ("bash", "_molteniron() {"),
        ("zsh", "#compdef molteniron"),
        ("fish", "complete -c molteniron"),
    ] {
        let (code, script, err) = run_without_database(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(err.is_empty(), "{shell}: {err}");
        assert!(script.contains(opening), "{shell}: {script}");
        for word in [
            "allocate",
            "release",
            "health-check",
            "metrics",
            "wait-timeout",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (_, bash, _) = run_without_database(&["completions", "bash"]);
    let mut check = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(bash.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, _, err) = run_without_database(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("molteniron: error: invalid value 'tcsh'"),
        "{err}"
    );
    assert_clean(&err);
}

#[test]
fn man_writes_one_page_per_subcommand_that_man_renders_with_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let (code, out, err) = run_without_database(&["man", "--dir", out_dir.to_str().unwrap()]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));

    let subcommands = subcommands();
    let mut expected: Vec<String> = subcommands
        .iter()
        .map(|s| format!("molteniron-{}.1", s.get_name()))
        .chain(["molteniron.1".to_owned()])
        .collect();
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written, expected);
    assert!(expected.contains(&"molteniron-allocate.1".to_owned()));

    for sub in &subcommands {
        let name = format!("molteniron-{}", sub.get_name());
        let path = out_dir.join(format!("{name}.1"));
        let page = std::fs::read_to_string(&path).unwrap();
        assert!(page.contains(&format!(".TH {name} 1 ")), "{page}");
        // Every option of the subcommand, its own and the global ones, as roff writes it.
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                let roff = format!(r"\fB\-\-{}\fR", long.replace('-', r"\-"));
                assert!(page.contains(&roff), "{name} lacks --{long}");
            }
        }
        let rendered = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap_or_else(|e| panic!("man not found ({e}): scripts/test installs man-db"));
        let (text, warnings) = (
            String::from_utf8_lossy(&rendered.stdout),
            String::from_utf8_lossy(&rendered.stderr),
        );
        assert!(
            rendered.status.success() && warnings.is_empty(),
            "{name}: {warnings}"
        );
        assert!(
            text.contains("NAME") && text.contains(&name),
            "{name}: {text}"
        );
    }
    let allocate = Command::new("man")
        .arg("-l")
        .arg(out_dir.join("molteniron-allocate.1"))
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let allocate = String::from_utf8_lossy(&allocate.stdout);
    for option in ["--wait-timeout", "--pool", "--database-url"] {
        assert!(allocate.contains(option), "{allocate}");
    }
    let top = std::fs::read_to_string(out_dir.join("molteniron.1")).unwrap();
    assert!(top.contains("molteniron\\-allocate(1)"), "{top}");

    // A file where the directory should be: one error line, exit 1.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let (code, _, err) = run_without_database(&["man", "--dir", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("molteniron: error: creating "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
