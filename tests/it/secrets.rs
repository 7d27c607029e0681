//! Secrets other than passwords (issue 12). The read-only role's view `nodes_public` masks by the same
//! rule as molteniron (src/secret.rs): the SQL rule is held to the Rust rule over a list of keys, and the
//! migration that brought it removes the secrets the history already held. Error messages do not echo a
//! rejected secret.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use molteniron::secret::{
    NOT_SECRET_ENDINGS, SECRET_ALONE, SECRET_ENDINGS, SECRET_WORDS, is_secret_key,
};
use serde_json::{Map, Value};

use crate::roles::{Roles, Who, texts};
use crate::support::TestDb;

#[test]
fn errors_never_echo_a_secret() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let cases: Vec<(Vec<&str>, &[u8], &str)> = vec![
        // A colon instead of `=`.
        (
            vec!["add", "n1", "--driver", "fake", "--driver-info", "snmp_auth_key:Leaky-1"],
            b"",
            "Leaky-1",
        ),
        (
            vec!["add", "n1", "--driver", "fake", "--property", "=Leaky-2"],
            b"",
            "Leaky-2",
        ),
        (
            vec!["set-field", "a0", "driver_info.snmp_auth_key", "Leaky-3", "--type", "int"],
            b"",
            "Leaky-3",
        ),
        (
            vec![
                "set-field",
                "a0",
                "driver_info.snmp_auth_key",
                r#"{"k": Leaky-4}"#,
                "--type",
                "json",
            ],
            b"",
            "Leaky-4",
        ),
        // A number too large for JSON under a secret key.
        (
            vec!["import"],
            b"nodes: [{name: n1, driver: fake, driver_info: {snmp_auth_key: 918273645546372819918273645}}]\n",
            "918273645546372819918273645",
        ),
        // driver_info written as one string.
        (
            vec!["import"],
            b"nodes: [{name: n1, driver: fake, driver_info: 'ipmi_password=Leaky-6'}]\n",
            "Leaky-6",
        ),
    ];
    for (mut args, file, secret) in cases {
        let yaml = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(yaml.path(), file).unwrap();
        if args == ["import"] {
            args.push(yaml.path().to_str().unwrap());
        }
        let err = db.fails(&args, 1);
        assert!(!err.contains(secret), "{args:?} echoes {secret}: {err}");
    }
}
/// Keys that exercise every word of the rule in several spellings, its exceptions, and the characters
/// where SQL and Rust could read a key differently (case beyond ASCII, digits, separators).
fn rule_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "ipmi_password",
        "IPMI_PASSWORD",
        "snmp_auth_key",
        "snmpAuthKey",
        "SNMP-AUTH-KEY-2",
        "snmp_auth_protocol",
        "snmp_community_read",
        "public_key",
        "ssh_pub_key",
        "deploy_kernel",
        "ansible_key_file",
        "ipmi_kg",
        "weight_kg",
        "kg",
        "kg_2",
        "redfish_auth_type",
        "proxy_authorization",
        "boot_bypass",
        "pass_through",
        "bmc_credentials",
        "private_key_file",
        "key",
        "",
        "0",
        "_",
        "ｋｅｙ",
        "snmp_auth_\u{212a}ey",
        "pass\u{e9}word",
        "p\u{130}ass",
        "\u{17f}ecret",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    let words = SECRET_WORDS
        .iter()
        .chain(SECRET_ENDINGS)
        .chain(NOT_SECRET_ENDINGS)
        .chain([&SECRET_ALONE]);
    for word in words {
        let upper = word.to_ascii_uppercase();
        keys.extend([
            (*word).to_owned(),
            upper.clone(),
            format!("x_{word}"),
            format!("{word}_x"),
            format!("X-{upper}-2"),
            format!("some{word}9"),
        ]);
    }
    // Every printable ASCII character, and a few beyond, inside a key.
    for c in (' '..='~').chain([
        '\u{7f}', 'ß', 'Ω', 'é', '\u{130}', '\u{131}', '\u{212a}', '\u{2013}',
    ]) {
        keys.extend([
            format!("snmp_auth{c}key"),
            format!("pub{c}key"),
            format!("{c}kg"),
            format!("pass{c}word"),
        ]);
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The view's rule (mask_passwords, in SQL) and molteniron's (src/secret.rs) are one rule: over
/// [`rule_keys`], nodes_public, read as the read-only role, masks exactly the keys that `status` masks.
#[test]
fn the_view_masks_exactly_the_keys_molteniron_masks() {
    let db = TestDb::new();
    let keys = rule_keys();
    let driver_info: Map<String, Value> =
        keys.iter().map(|k| (k.clone(), Value::from("v"))).collect();
    diesel::sql_query(
        "INSERT INTO nodes (name, driver, driver_info) VALUES ('drift', 'fake', $1::jsonb)",
    )
    .bind::<Text, _>(Value::Object(driver_info).to_string())
    .execute(&mut db.conn())
    .unwrap();
    let roles = Roles::apply(&db);
    let view = texts(
        &mut roles.conn(Who::Readonly),
        "SELECT driver_info::text AS t FROM nodes_public",
    )
    .unwrap();
    let view: Value = serde_json::from_str(&view[0]).unwrap();
    let status: Vec<Value> = serde_json::from_str(&db.ok(&["status", "-o", "json"])).unwrap();
    let mut masked = 0;
    for key in &keys {
        let secret = is_secret_key(key);
        let shown = if secret { "********" } else { "v" };
        assert_eq!(
            view[key], shown,
            "nodes_public and molteniron differ on {key:?}"
        );
        assert_eq!(status[0]["driver_info"][key], shown, "status on {key:?}");
        masked += usize::from(secret);
    }
    assert!(
        masked > 50 && keys.len() - masked > 50,
        "{masked} of {}",
        keys.len()
    );
}

/// The migration that brought the rule records as "(changed)" every set-field value the history already
/// held for a key now known as a secret (or holding one), and leaves every other event as it was.
#[test]
fn the_migration_removes_secrets_the_history_already_held() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let mut conn = db.conn();
    // What set-field recorded for these edits before the rule knew their keys.
    conn.batch_execute(
        r#"INSERT INTO events (node_id, node_name, action, detail) VALUES
           (1, 'a0', 'set_field', '{"field": "driver_info.snmp_auth_key", "value": "Old-Secret-1"}'),
           (1, 'a0', 'set_field', '{"field": "properties.ipmi_kg", "value": 12345678}'),
           (1, 'a0', 'set_field', '{"field": "extra", "value": {"bmc": [{"community": "Old-Secret-3"}]}}'),
           (1, 'a0', 'set_field', '{"field": "driver_info.ipmi_password", "value": "(changed)"}'),
           (1, 'a0', 'set_field', '{"field": "driver_info.ipmi_port", "value": "6230"}'),
           (1, 'a0', 'set_field', '{"field": "extra", "value": {"rack": "B4"}}'),
           (1, 'a0', 'maintenance_on', '{"reason": "token reader broken"}')"#,
    )
    .unwrap();
    let details = |conn: &mut PgConnection| {
        texts(conn, "SELECT detail::text AS t FROM events ORDER BY id").unwrap()
    };
    let before = details(&mut conn);
    conn.batch_execute(include_str!(
        "../../migrations/2026-12-01-000001_secret_keys/up.sql"
    ))
    .unwrap();
    let after = details(&mut conn);
    let secrets = ["Old-Secret-1", "12345678", "Old-Secret-3"];
    assert_eq!(before.len(), after.len());
    for (before, after) in before.iter().zip(&after) {
        let mut want: Value = serde_json::from_str(before).unwrap();
        if secrets.iter().any(|s| before.contains(s)) {
            want["value"] = Value::from("(changed)");
        }
        assert_eq!(
            serde_json::from_str::<Value>(after).unwrap(),
            want,
            "{before}"
        );
    }
    let history = db.ok(&["history", "-o", "json"]);
    for secret in secrets {
        assert!(!history.contains(secret), "{history}");
    }
    assert!(history.contains("6230") && history.contains("B4") && history.contains("token reader"));
}
