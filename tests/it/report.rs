//! `molteniron report --html`: the page after real allocate, release --failed, quarantine, maintenance and
//! a request waiting in line: the pools' counts as the database has them, the line, the nodes out of
//! service with their reasons escaped, the charts, nothing external, no credential, the readonly role
//! running it, and a failed write leaving the old page alone. scripts/check-integrations also renders
//! it in a real headless Chromium.

use crate::queue::join_the_line;
use crate::roles::{Roles, Who};
use crate::support::{TestDb, count};

/// A BMC password that must never reach the page.
const SECRET: &str = "Report-Secret-9xQ";

fn seed(db: &TestDb) {
    let mut yaml = String::from("nodes:\n");
    for (i, pool) in ["gpu", "gpu", "gpu", "arm", "arm"].iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: {pool}{i}, pool: {pool}, driver_info: {{ipmi_address: 10.7.0.{}, ipmi_username: u, ipmi_password: {SECRET}}}, ports: [{{address: '02:00:00:07:00:{:02x}'}}]}}\n",
            i + 1,
            i + 1
        ));
    }
    db.import(&yaml);
}

/// The row of `pool` in the pools table: its cells' text, in the order of the header.
fn pool_row(page: &str, pool: &str) -> Vec<String> {
    let start = page
        .find(&format!("<tr><td>{pool}</td>"))
        .unwrap_or_else(|| panic!("no row for pool {pool}"));
    let row = &page[start..start + page[start..].find("</tr>").unwrap()];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let text = &cell[cell.find('>').unwrap() + 1..];
            text[..text.find("</td>").unwrap()].to_owned()
        })
        .collect()
}

#[test]
fn the_page_shows_the_pool_the_line_and_what_is_out_of_service_and_never_a_secret() {
    let db = TestDb::new();
    seed(&db);
    db.ok(&["allocate", "job-1", "2", "gpu"]);
    db.ok(&[
        "maintenance",
        "arm4",
        "--reason",
        "<script>alert(1)</script> cable",
    ]);
    // Three failed jobs on arm3 (the only arm node left) from two owners quarantine it.
    for owner in ["job-a", "job-b", "job-a"] {
        db.ok(&["allocate", owner, "1", "arm"]);
        db.ok(&["release", owner, "--failed", "--reason", "deploy timed out"]);
    }
    // One request waited and was granted (the waits chart); another waits still (the line).
    let gpu = serde_json::json!({"pool": "gpu"});
    db.ok(&["allocate", "job-0", "1", "gpu"]);
    join_the_line(&mut db.conn(), "job-earlier", &gpu, 1);
    db.ok(&["release", "job-0"]); // serves the line: job-earlier gets gpu's free node
    join_the_line(&mut db.conn(), "job-waits", &gpu, 2);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("index.html");
    let (code, out, err) = db.run(&["report", "--html", file.to_str().unwrap()]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let page = std::fs::read_to_string(&file).unwrap();

    // The counts per pool and state, as the database has them, in the header's order.
    let mut conn = db.conn();
    let header: Vec<String> = {
        let start = page.find("<tr><th>pool</th>").unwrap();
        let row = &page[start..start + page[start..].find("</tr>").unwrap()];
        row.split("<th")
            .skip(2)
            .map(|c| c[c.find('>').unwrap() + 1..c.find("</th>").unwrap()].to_owned())
            .collect()
    };
    for pool in ["gpu", "arm"] {
        let cells = pool_row(&page, pool);
        for (i, state) in header.iter().enumerate() {
            let want = match state.as_str() {
                "ready" | "allocated" | "dirty" | "maintenance" => count(
                    &mut conn,
                    &format!(
                        "SELECT count(*) AS n FROM nodes WHERE pool = '{pool}' AND state = '{state}'"
                    ),
                ),
                "total" => count(
                    &mut conn,
                    &format!("SELECT count(*) AS n FROM nodes WHERE pool = '{pool}'"),
                ),
                "waiting" => i64::from(pool == "gpu"),
                "expired leases" => 0,
                _ => continue,
            };
            assert_eq!(cells[i + 1], want.to_string(), "pool {pool}, {state}");
        }
    }
    assert_eq!(pool_row(&page, "gpu")[2], "3", "every gpu node allocated");

    // The line, and what is out of service and why (escaped).
    assert!(page.contains("<td>job-waits</td>"), "{page}");
    assert!(page.contains("quarantined: 3 failed jobs in a row (last: deploy timed out)"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; cable"));
    // The charts: utilization of both pools, the granted wait, arm3's failures.
    assert!(page.contains("Utilization per pool"));
    assert!(
        page.contains(">1 node(s)</text>"),
        "the wait of a 1-node request"
    );
    assert!(page.contains(">arm3</text>"), "arm3 in the failures chart");
    assert!(page.contains("3 of 3 reported jobs failed (arm)"));
    assert_eq!(
        page.matches("<svg").count(),
        2 + 3,
        "a bar per pool and three charts"
    );

    // Self-contained and inert: no script, no external asset, no credential.
    for forbidden in ["<script", "http://", "https://", "src=", "<link", SECRET] {
        assert!(!page.contains(forbidden), "the page holds {forbidden:?}");
    }

    // The readonly role may write it too.
    let roles = Roles::apply(&db);
    let theirs = dir.path().join("readonly.html");
    roles.ok(
        Who::Readonly,
        &["report", "--html", theirs.to_str().unwrap()],
    );
    assert!(
        std::fs::read_to_string(&theirs)
            .unwrap()
            .contains("<td>job-waits</td>")
    );

    // A write that fails is one error line and leaves no temporary file behind.
    let missing = dir.path().join("no-such-dir").join("index.html");
    let err = db.fails(&["report", "--html", missing.to_str().unwrap()], 1);
    assert!(err.contains("writing the report to"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}
