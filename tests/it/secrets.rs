//! Secrets that are not called passwords (issue 12): for each family of keys that name a secret (see
//! src/secret.rs), a value stored with `import` or `set-field` appears in none of `history`, `status`
//! (human, CSV, JSON, `--baremetal`), the edit's own output, the events table or the read-only role's
//! `nodes_public`, while the keys next to it that only look like secrets stay visible. Error messages do
//! not echo a rejected secret either. The view's SQL rule is held to molteniron's over a list of keys, and
//! the migration that brought the rule removes the secrets the history already held.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use molteniron::secret::{
    NOT_SECRET_ENDINGS, SECRET_ALONE, SECRET_ENDINGS, SECRET_WORDS, is_secret_key,
};
use serde_json::{Map, Value};

use crate::roles::{Roles, Who, texts};
use crate::support::TestDb;

/// A node holding one family's secrets, and what must and must not show.
struct Family<'a> {
    /// driver_info keys imported with a secret value each.
    imported: &'a [&'a str],
    /// `set-field s0 FIELD VALUE` edits; VALUE is JSON (`--type json`) when it starts with `{`. Each VALUE
    /// holds the secret it names in `hidden`.
    set: &'a [(&'a str, &'a str)],
    /// Values `set` stores that must never show.
    hidden: &'a [&'a str],
    /// driver_info keys that look like this family but are not secrets: imported, and shown as stored.
    visible: &'a [&'a str],
}

/// Imports the node, applies the edits, then checks every way the pool can be read without
/// `--show-secrets`, by molteniron and by the read-only role with psql.
fn assert_family_masked(family: &Family) {
    let db = TestDb::new();
    let mut yaml = String::from(
        "nodes:\n  - name: s0\n    driver_info:\n      ipmi_address: 10.230.0.1\n      ipmi_username: admin\n",
    );
    let mut secrets: Vec<String> = family.hidden.iter().map(|s| (*s).to_owned()).collect();
    for (i, key) in family.imported.iter().enumerate() {
        let value = format!("Imported-Secret-{i}");
        yaml.push_str(&format!("      '{key}': '{value}'\n"));
        secrets.push(value);
    }
    for (i, key) in family.visible.iter().enumerate() {
        yaml.push_str(&format!("      '{key}': 'Visible-{i}'\n"));
    }
    yaml.push_str("    ports: [{address: '02:cc:00:00:00:01'}]\n");
    db.import(&yaml);
    let mut outputs = Vec::new();
    for (field, value) in family.set {
        let mut args = vec!["set-field", "s0", field, value, "-o", "json"];
        if value.starts_with('{') {
            args.extend(["--type", "json"]);
        }
        outputs.push((format!("{args:?}"), db.ok(&args)));
    }
    for args in [
        &["history"][..],
        &["history", "-o", "json"],
        &["history", "-o", "csv"],
        &["status"],
        &["status", "-o", "csv"],
        &["status", "-o", "json"],
        &["status", "--baremetal"],
        &["status", "--baremetal", "-o", "csv"],
    ] {
        outputs.push((format!("{args:?}"), db.ok(args)));
    }

    let roles = Roles::apply(&db);
    let mut readonly = roles.conn(Who::Readonly);
    let view = texts(
        &mut readonly,
        "SELECT row_to_json(p)::text AS t FROM nodes_public AS p",
    )
    .unwrap();
    let events = texts(&mut readonly, "SELECT detail::text AS t FROM events").unwrap();
    outputs.push(("nodes_public".to_owned(), view.join("\n")));
    outputs.push(("events".to_owned(), events.join("\n")));

    for (what, text) in &outputs {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} shows {secret}: {text}"
            );
        }
    }

    // The masked values are there for those who may see them, and the look-alikes are not masked.
    let shown = db.ok(&["status", "-o", "json", "--show-secrets"]);
    for secret in &secrets {
        assert!(
            shown.contains(secret.as_str()),
            "{secret} was not stored: {shown}"
        );
    }
    let status: Vec<Value> = serde_json::from_str(&db.ok(&["status", "-o", "json"])).unwrap();
    let public: Value = serde_json::from_str(&view[0]).unwrap();
    for (i, key) in family.visible.iter().enumerate() {
        let want = format!("Visible-{i}");
        assert_eq!(
            status[0]["driver_info"][key],
            want.as_str(),
            "status: {key}"
        );
        assert_eq!(
            public["driver_info"][key],
            want.as_str(),
            "nodes_public: {key}"
        );
    }
    for key in family.imported {
        assert_eq!(status[0]["driver_info"][key], "********", "status: {key}");
        assert_eq!(
            public["driver_info"][key], "********",
            "nodes_public: {key}"
        );
    }
}

#[test]
fn passwords_by_their_short_names_are_masked() {
    assert_family_masked(&Family {
        imported: &["ipmi_passwd", "admin_pass", "adminPass"],
        set: &[
            ("driver_info.sys_pswd", "Set-Secret-Pswd"),
            ("properties.bmc_pwd", "Set-Secret-Pwd"),
            ("driver_info.ipmi_pw", "Set-Secret-Pw"),
        ],
        hidden: &["Set-Secret-Pswd", "Set-Secret-Pwd", "Set-Secret-Pw"],
        visible: &["boot_bypass", "pass_through", "ipmi_port"],
    });
}

#[test]
fn passphrases_are_masked() {
    assert_family_masked(&Family {
        imported: &["ssh_key_passphrase", "Passphrase"],
        set: &[("driver_info.pass-phrase", "Set-Secret-Phrase")],
        hidden: &["Set-Secret-Phrase"],
        visible: &["ipmi_protocol_version"],
    });
}

#[test]
fn secrets_are_masked() {
    assert_family_masked(&Family {
        imported: &["client_secret", "secret_uuid"],
        set: &[(
            "extra",
            r#"{"vault": [{"note": "keep"}, {"Shared-Secret": "Set-Secret-Nested"}]}"#,
        )],
        hidden: &["Set-Secret-Nested"],
        visible: &["ipmi_priv_level"],
    });
}

#[test]
fn tokens_are_masked() {
    assert_family_masked(&Family {
        imported: &["auth_token", "redfish_token"],
        set: &[("driver_info.API-TOKEN", "Set-Secret-Token")],
        hidden: &["Set-Secret-Token"],
        visible: &["redfish_system_id"],
    });
}

#[test]
fn keys_ending_in_key_are_masked_but_not_public_keys() {
    assert_family_masked(&Family {
        imported: &["snmp_auth_key", "snmp_priv_key", "key", "ipmi_hex_kg_key"],
        set: &[
            ("driver_info.api_key_2", "Set-Secret-Key"),
            ("properties.snmpAuthKey", "Set-Secret-Camel"),
        ],
        hidden: &["Set-Secret-Key", "Set-Secret-Camel"],
        visible: &[
            "public_key",
            "ssh_pubkey",
            "deploy_kernel",
            "ansible_key_file",
            "key_name",
            "snmp_auth_protocol",
        ],
    });
}

#[test]
fn ipmi_kg_is_masked_but_not_a_weight_in_kg() {
    assert_family_masked(&Family {
        imported: &["ipmi_kg", "kg"],
        set: &[("driver_info.bmc_kg", "Set-Secret-Kg")],
        hidden: &["Set-Secret-Kg"],
        visible: &["weight_kg", "ipmi_cipher_suite"],
    });
}

#[test]
fn private_keys_are_masked() {
    assert_family_masked(&Family {
        imported: &["ssh_private_key", "private_key_file"],
        set: &[("properties.privkey_pem", "Set-Secret-Private")],
        hidden: &["Set-Secret-Private"],
        visible: &["ssh_key_name", "public_key"],
    });
}

#[test]
fn community_strings_are_masked() {
    assert_family_masked(&Family {
        imported: &[
            "snmp_community",
            "snmp_community_read",
            "snmp_community_write",
        ],
        set: &[("driver_info.irmc_snmp_community", "Set-Secret-Community")],
        hidden: &["Set-Secret-Community"],
        visible: &["snmp_version", "snmp_user"],
    });
}

#[test]
fn credentials_are_masked_whole() {
    assert_family_masked(&Family {
        imported: &["credential", "redfish_credentials"],
        set: &[(
            "extra",
            r#"{"bmc_credentials": {"user": "Set-Secret-User", "via": "Set-Secret-Via"}}"#,
        )],
        hidden: &["Set-Secret-User", "Set-Secret-Via"],
        visible: &["ipmi_bridging"],
    });
}

#[test]
fn auth_values_are_masked_but_not_auth_settings() {
    assert_family_masked(&Family {
        imported: &["http_auth", "basic_auth", "proxy_authorization"],
        set: &[("driver_info.oauth", "Set-Secret-Auth")],
        hidden: &["Set-Secret-Auth"],
        visible: &["redfish_auth_type", "snmp_auth_protocol", "auth_url"],
    });
}

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
