//! Exit codes from one source: the README's table is `Exit` (src/error.rs), `--help` prints it, and a
//! real command reaches each code without a panic (the style of diesel_cli's exit_codes tests).

use molteniron::error::Exit;

use crate::support::{TestDb, assert_clean, molteniron_cmd};

/// The README's exit-code table as (code, meaning) rows.
fn readme_table() -> Vec<(u8, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Exit codes\n")
        .nth(1)
        .expect("README has an Exit codes section");
    section
        .lines()
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
            let code = cells.first()?.trim().parse().ok()?;
            Some((code, cells.get(1)?.trim().to_owned()))
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_exit_enum() {
    let expected: Vec<(u8, String)> = Exit::ALL
        .iter()
        .map(|e| (e.code(), e.detail().to_owned()))
        .collect();
    assert_eq!(readme_table(), expected);
}

#[test]
fn help_lists_every_exit_code() {
    let out = molteniron_cmd().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap().replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains(&Exit::summary()), "{help}");
}

#[test]
fn each_exit_code_is_reached_by_a_real_command() {
    let db = TestDb::new();
    db.seed("n", 1, "default");
    db.ok(&["allocate", "holder", "1"]);
    db.seed("hc", 1, "checked");
    let unreachable = "postgres://nobody@127.0.0.1:1/none?connect_timeout=1";
    let rows: &[(Exit, &[&str])] = &[
        (Exit::Ok, &["status"]),
        (Exit::Invalid, &["import", "/nonexistent/nodes.yaml"]),
        (Exit::Usage, &["allocate", "job", "--lease", "soon"]),
        (Exit::NotEnough, &["allocate", "job", "1", "default"]),
        (Exit::NotFound, &["renew", "nobody"]),
        (
            Exit::Unreachable,
            &["--database-url", unreachable, "status"],
        ),
        (Exit::Conflict, &["allocate", "holder", "2"]),
        // Only the node named (the "hc" seed's) is checked.
        (
            Exit::ChecksFailed,
            &["health-check", "hc0", "--command", "exit 1"],
        ),
        (Exit::Unsatisfiable, &["allocate", "job", "1", "nosuchpool"]),
    ];
    // The last code needs a signal: a waiting allocate is interrupted below.
    assert_eq!(
        rows.iter()
            .map(|(e, _)| *e)
            .chain([Exit::Interrupted])
            .collect::<Vec<_>>(),
        Exit::ALL,
        "one row per exit code"
    );
    for (exit, args) in rows {
        let (code, stdout, stderr) = db.run(args);
        assert_eq!(code, i32::from(exit.code()), "{args:?}: {stderr}");
        assert_clean(&stdout);
        assert_clean(&stderr);
        if *exit != Exit::Ok {
            assert!(
                stderr.starts_with("molteniron: error: "),
                "{args:?}: {stderr}"
            );
        }
    }
    let mut child = db
        .std_cmd()
        .args(["allocate", "waiter", "1", "--wait"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = db.conn();
    while crate::support::count(&mut conn, "SELECT count(*) AS n FROM requests") == 0 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the waiter exited before joining the line: {:?} {} {}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(i32::from(Exit::Interrupted.code())));
    drop(child.stderr.take());
}
