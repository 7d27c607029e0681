//! `molteniron metrics`: the numbers after real allocate, release, reap, quarantine and queue operations,
//! the textfile written atomically, the readonly role running it, and Prometheus' own promtool checking
//! the output, the alert rules of contrib/prometheus (with their unit tests) and that the Grafana
//! dashboard of contrib/grafana asks only for metrics that exist. promtool comes from Debian's
//! `prometheus` package, which scripts/test installs: without it these tests fail, they do not skip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::Value;

use crate::roles::{Roles, Who};
use crate::support::{TestDb, count};

/// A pool name that needs every escape of a label value: a double quote and a backslash.
const ODD_POOL: &str = r#"rack "7" \ gpu"#;
const ODD_LABEL: &str = r#"rack \"7\" \\ gpu"#;

/// `promtool ARGS` (Debian's prometheus package), failing the test when it is missing.
fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool not found ({e}): scripts/test installs it (Debian's prometheus package)"
            )
        });
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Asserts that `promtool check metrics` accepts `text` with no lint problem at all.
fn assert_promtool_accepts(text: &str) {
    let (ok, said) = promtool(&["check", "metrics"], Some(text));
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{text}");
}

/// The samples of an exposition, `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// The metric families an exposition declares (its `# TYPE` lines), name → type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

fn repo_file(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .to_str()
        .unwrap()
        .to_owned()
}

/// Moves OWNER's allocations back in time: allocated `held_secs` ago, the lease expired a minute ago.
fn expire(db: &TestDb, owner: &str, held_secs: i64) {
    diesel::sql_query(format!(
        "UPDATE nodes SET allocated_at = now() - interval '{held_secs} seconds',
                          lease_expires_at = now() - interval '1 minute'
         WHERE owner = '{owner}'"
    ))
    .execute(&mut db.conn())
    .unwrap();
}

#[test]
fn metrics_count_nodes_leases_allocations_reaps_quarantines_and_the_line() {
    let db = TestDb::new();
    db.seed("d", 3, "default");
    db.import(&format!(
        "nodes:
  - {{name: q0, pool: '{ODD_POOL}', driver_info: {{ipmi_address: 10.77.0.1, ipmi_username: u, ipmi_password: pw}}, ports: [{{address: '02:77:00:00:00:01'}}]}}
"
    ));
    // default: 4 allocations; job-1's expired and was reaped; job-3 holds two nodes whose leases
    // expired (not reaped yet), for two hours; d2 goes to maintenance.
    db.ok(&["allocate", "job-1", "1", "default"]);
    db.ok(&["allocate", "job-2", "1", "default"]);
    db.ok(&["release", "job-2"]);
    expire(&db, "job-1", 600);
    db.ok(&["reap"]);
    db.ok(&["allocate", "job-3", "2", "default"]);
    expire(&db, "job-3", 7200);
    db.ok(&["maintenance", "d2", "--reason", "fan"]);
    // The odd pool: three failed jobs from two owners quarantine its only node.
    for owner in ["a", "b", "a"] {
        db.ok(&["allocate", owner, "1", ODD_POOL]);
        db.ok(&["release", owner, "--failed", "--reason", "deploy timed out"]);
    }
    // Two real waiters in line: one for any pool, one for default.
    let waiters: Vec<_> = [&["w-any", "1"][..], &["w-default", "1", "default"]]
        .iter()
        .map(|args| {
            db.std_cmd()
                .arg("allocate")
                .args(*args)
                .args(["--wait", "--wait-timeout", "5m"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        &mut db.conn(),
        "SELECT count(*) AS n FROM requests WHERE state = 'waiting'",
    ) < 2
    {
        assert!(
            Instant::now() < deadline,
            "the waiters never joined the line"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let text = db.ok(&["metrics"]);
    for mut waiter in waiters {
        let _ = waiter.kill();
        let _ = waiter.wait();
    }
    assert_promtool_accepts(&text);
    let got = samples(&text);
    let value = |series: &str| -> f64 {
        *got.get(series)
            .unwrap_or_else(|| panic!("no sample {series}:\n{text}"))
    };
    let d = r#"pool="default""#;
    let q = format!(r#"pool="{ODD_LABEL}""#);
    for (state, default, odd) in [
        ("ready", 0.0, 0.0),
        ("allocated", 2.0, 0.0),
        ("dirty", 0.0, 0.0),
        ("maintenance", 1.0, 1.0),
    ] {
        assert_eq!(
            value(&format!(r#"molteniron_nodes{{{d},state="{state}"}}"#)),
            default
        );
        assert_eq!(
            value(&format!(r#"molteniron_nodes{{{q},state="{state}"}}"#)),
            odd
        );
    }
    for (name, default, odd) in [
        ("molteniron_expired_leases", 2.0, 0.0),
        ("molteniron_allocations_total", 4.0, 3.0),
        ("molteniron_reaped_total", 1.0, 0.0),
        ("molteniron_quarantined_total", 0.0, 1.0),
        ("molteniron_quarantined_nodes", 0.0, 1.0),
        ("molteniron_waiting_requests", 1.0, 0.0),
    ] {
        assert_eq!(value(&format!("{name}{{{d}}}")), default, "{name}");
        assert_eq!(value(&format!("{name}{{{q}}}")), odd, "{name}");
    }
    let oldest = value(&format!("molteniron_oldest_allocation_age_seconds{{{d}}}"));
    assert!((7200.0..7300.0).contains(&oldest), "{oldest}");
    assert_eq!(
        value(&format!("molteniron_oldest_allocation_age_seconds{{{q}}}")),
        0.0
    );
    // The request for any pool is the pool="" sample.
    assert_eq!(value(r#"molteniron_waiting_requests{pool=""}"#), 1.0);
    for pool in [d, r#"pool="""#] {
        let age = value(&format!(
            "molteniron_oldest_waiting_request_age_seconds{{{pool}}}"
        ));
        assert!(age > 0.0 && age < 60.0, "{pool}: {age}");
    }
    assert_eq!(
        value(&format!(
            r#"molteniron_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    // 4 node series per pool, 8 per-pool families of which 2 also have pool="", and info.
    assert_eq!(got.len(), 2 * 4 + 2 * 8 + 2 + 1, "{text}");
    // No owner ever becomes a label.
    for owner in ["job-3", "w-any", "w-default"] {
        assert!(!text.contains(owner), "{text}");
    }
}

#[test]
fn metrics_of_an_empty_pool_declare_every_family_and_only_the_info_sample() {
    let db = TestDb::new();
    let text = db.ok(&["metrics"]);
    assert_promtool_accepts(&text);
    let kinds = families(&text);
    assert_eq!(
        kinds.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "molteniron_allocations_total",
            "molteniron_expired_leases",
            "molteniron_info",
            "molteniron_nodes",
            "molteniron_oldest_allocation_age_seconds",
            "molteniron_oldest_waiting_request_age_seconds",
            "molteniron_quarantined_nodes",
            "molteniron_quarantined_total",
            "molteniron_reaped_total",
            "molteniron_waiting_requests",
        ]
    );
    for (name, kind) in &kinds {
        assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert_eq!(samples(&text).len(), 1, "{text}");
    // -o has nothing to offer here.
    db.fails(&["metrics", "-o", "json"], 2);
}

#[test]
fn metrics_textfile_replaces_the_file_atomically_and_a_bad_path_is_one_error_line() {
    use std::os::unix::fs::MetadataExt;
    let db = TestDb::new();
    db.seed("t", 2, "default");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("molteniron.prom");
    std::fs::write(&file, "old\n").unwrap();
    let old_inode = std::fs::metadata(&file).unwrap().ino();
    // A reader that has the old file open (node_exporter mid-read) keeps reading the old file whole.
    let reader = std::fs::File::open(&file).unwrap();

    let out = db.ok(&["metrics", "--textfile", file.to_str().unwrap()]);
    assert!(out.is_empty(), "{out}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, db.ok(&["metrics"]));
    assert_promtool_accepts(&written);
    assert_ne!(
        std::fs::metadata(&file).unwrap().ino(),
        old_inode,
        "renamed over, not rewritten"
    );
    assert_eq!(std::io::read_to_string(reader).unwrap(), "old\n");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["molteniron.prom"], "no temporary file is left");

    // A relative path is written in the current directory.
    let out = db
        .cmd()
        .current_dir(dir.path())
        .args(["metrics", "--textfile", "relative.prom"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("relative.prom")).unwrap(),
        written
    );

    // No such directory, and a directory in the way: one error line, exit 1, nothing left behind.
    let missing = dir.path().join("no/such/dir/m.prom");
    let in_the_way = dir.path().join("taken.prom");
    std::fs::create_dir(&in_the_way).unwrap();
    for path in [&missing, &in_the_way] {
        let err = db.fails(&["metrics", "--textfile", path.to_str().unwrap()], 1);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("writing the metrics to"), "{err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}

#[test]
fn the_readonly_role_runs_metrics() {
    let db = TestDb::new();
    db.seed("r", 2, "default");
    db.ok(&["allocate", "job-1"]);
    let roles = Roles::apply(&db);
    let text = roles.ok(Who::Readonly, &["metrics"]);
    assert_promtool_accepts(&text);
    let mut mine = samples(&text);
    let mut theirs = samples(&db.ok(&["metrics"]));
    for got in [&mut mine, &mut theirs] {
        got.retain(|series, _| !series.contains("_age_seconds"));
    }
    assert_eq!(mine, theirs);
}

#[test]
fn promtool_accepts_the_alert_rules_and_their_unit_tests_pass() {
    let rules = repo_file("contrib/prometheus/alerts.yml");
    let (ok, said) = promtool(&["check", "rules", &rules], None);
    assert!(ok, "{said}");
    assert!(said.contains("SUCCESS: 4 rules found"), "{said}");
    let (ok, said) = promtool(
        &[
            "test",
            "rules",
            &repo_file("contrib/prometheus/alerts.test.yml"),
        ],
        None,
    );
    assert!(ok && said.contains("SUCCESS"), "{said}");
}

/// Every `molteniron_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.match_indices("molteniron_")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Every string in a JSON document.
fn strings(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) => found.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, found)),
        Value::Object(map) => map.values().for_each(|v| strings(v, found)),
        _ => {}
    }
}

#[test]
fn the_dashboard_and_the_alerts_ask_only_for_metrics_that_metrics_writes() {
    let db = TestDb::new();
    let emitted: BTreeSet<String> = families(&db.ok(&["metrics"])).into_keys().collect();

    let text = std::fs::read_to_string(repo_file("contrib/grafana/molteniron.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{}", panels.len());
    let mut exprs = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let mut all = Vec::new();
    strings(&dashboard, &mut all);
    let used = metric_names(&all.join("\n"));
    let unknown: Vec<_> = used.difference(&emitted).collect();
    assert!(unknown.is_empty(), "the dashboard asks for {unknown:?}");
    // Every panel queries molteniron, and every metric is on the dashboard.
    for expr in &exprs {
        assert!(!metric_names(expr).is_empty(), "{expr}");
    }
    assert_eq!(used, emitted);

    let rules = std::fs::read_to_string(repo_file("contrib/prometheus/alerts.yml")).unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&rules).unwrap();
    let mut names = BTreeSet::new();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        names.extend(metric_names(rule["expr"].as_str().unwrap()));
    }
    let unknown: Vec<_> = names.difference(&emitted).collect();
    assert!(unknown.is_empty(), "the alerts ask for {unknown:?}");
}
