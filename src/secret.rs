//! Which JSON keys name a secret, and masking their values: the one rule behind everything molteniron
//! shows of a node's `driver_info`, `properties` and Ironic fields without `--show-secrets` (`status` in
//! every format, node JSON, the `set_field` history), written once more in SQL for the read-only role's
//! view `nodes_public` (`mask_passwords` in migrations/2026-12-01-000001_secret_keys). The integration
//! test `secrets::the_view_masks_exactly_the_keys_molteniron_masks` holds the two to each other.
//!
//! Like OpenStack's own masking (oslo.utils' `mask_dict_password`, which Ironic's API applies to
//! `driver_info`), a key is judged by the words in it rather than looked up in a list of known fields, so
//! a driver's new credential is masked without a change here. A key is read as its ASCII letters in lower
//! case, everything else left out: `snmp_auth_key`, `snmpAuthKey`, `SNMP-AUTH-KEY` and `snmp_auth_key_2`
//! all read `snmpauthkey`. A key names a secret when it reads
//!
//! - with one of [`SECRET_WORDS`] anywhere: passwords (`password`, `passwd`), `passphrase`, `secret`,
//!   `token`, `credential(s)`, SNMP `community` strings and private keys (`private_key`, `privkey`);
//! - with one of [`SECRET_ENDINGS`] at the end, unless it ends with one of [`NOT_SECRET_ENDINGS`]: any
//!   `*_key` (`snmp_auth_key`, `snmp_priv_key`, `api_key`, `ipmi_hex_kg_key`, a bare `key`) but not a
//!   public key (`public_key`, `ssh_pubkey`); the short forms of password (`admin_pass`, `ipmi_pwd`,
//!   `sys_pswd`, `ipmi_pw`) but not `bypass`; a value that is itself an authentication (`http_auth`,
//!   `basic_auth`, `oauth`, `proxy_authorization`); IPMI's BMC key K_g (`ipmi_kg`, `bmc_kg`);
//! - as `kg` alone.
//!
//! What is deliberately not a secret, and why:
//! - `public_key`, `pubkey`: a public key is made to be shared; hiding it protects nothing and hides which
//!   key a machine trusts.
//! - settings about authentication rather than the authentication itself: `redfish_auth_type`,
//!   `snmp_auth_protocol`, `auth_url` (`auth` counts only at the end of a key);
//! - `weight_kg` and other `*_kg`: a weight in kilograms, not IPMI's K_g, which counts alone or after
//!   `ipmi` or `bmc`;
//! - keys that name a key without holding one: `key_name`, `ssh_key_id`, `ansible_key_file` (a path);
//!   and words that only contain "key": `deploy_kernel`, `keystone_url`;
//! - `bypass`, `pass_through`: not passwords, although `bypass` ends with "pass".
//!
//! A bare `key` is masked: in `driver_info` it most likely holds one, and where it is only a name (a
//! `{key, value}` tag list) masking it costs readability, never a leak. The rule errs the same way
//! elsewhere (`hotkey`, `password_policy` are masked): a masked value is one `--show-secrets` away, a
//! leaked one cannot be taken back.

use serde_json::Value;

/// A key that reads with one of these anywhere names a secret.
pub const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "community",
    "privatekey",
    "privkey",
];

/// A key that reads with one of these at the end names a secret, unless it ends with one of
/// [`NOT_SECRET_ENDINGS`].
pub const SECRET_ENDINGS: &[&str] = &[
    "key",
    "pass",
    "pwd",
    "pswd",
    "pw",
    "auth",
    "authorization",
    "ipmikg",
    "bmckg",
];

/// Endings that look like [`SECRET_ENDINGS`] but are not secrets.
pub const NOT_SECRET_ENDINGS: &[&str] = &["publickey", "pubkey", "bypass"];

/// A key that reads exactly like this names a secret (IPMI's K_g).
pub const SECRET_ALONE: &str = "kg";

/// Whether `key` names a secret, by the rule in the module documentation.
pub fn is_secret_key(key: &str) -> bool {
    let letters: String = key
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let ends = |ending: &&str| letters.ends_with(ending);
    SECRET_WORDS.iter().any(|word| letters.contains(word))
        || letters == SECRET_ALONE
        || (SECRET_ENDINGS.iter().any(ends) && !NOT_SECRET_ENDINGS.iter().any(ends))
}

/// Whether a JSON value holds a secret anywhere inside it: a key that [`is_secret_key`] names, at any
/// depth.
pub fn contains_secret(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| is_secret_key(k) || contains_secret(v)),
        Value::Array(items) => items.iter().any(contains_secret),
        _ => false,
    }
}

/// Replaces the value of every secret key inside `value`, at any depth, with `mask`. A masked value is
/// replaced whole, whatever it is (a string, a number, an object of credentials).
pub fn mask_secrets(value: &mut Value, mask: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if is_secret_key(key) {
                    *inner = Value::from(mask);
                } else {
                    mask_secrets(inner, mask);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_secrets(v, mask)),
        _ => {}
    }
}

/// The values of every secret key inside `value`, at any depth (strings as they are, other values as
/// JSON text): what must never appear in output that came from outside, such as a health check's stderr.
pub fn secret_values(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_secrets(value, &mut found);
    found
}

fn collect_secrets(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match inner {
                    _ if !is_secret_key(key) => collect_secrets(inner, found),
                    Value::String(text) => found.push(text.clone()),
                    Value::Null => {}
                    other => found.push(other.to_string()),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn secret(keys: &[&str]) {
        for key in keys {
            assert!(is_secret_key(key), "{key} should be a secret");
        }
    }

    #[track_caller]
    fn not_secret(keys: &[&str]) {
        for key in keys {
            assert!(!is_secret_key(key), "{key} should not be a secret");
        }
    }

    #[test]
    fn passwords_in_any_spelling() {
        secret(&[
            "password",
            "ipmi_password",
            "redfish_password",
            "IPMI_PASSWORD",
            "root_PASSWORD",
            "adminPassword",
            "irmc_snmp_auth_password",
            "password_policy",
            "ipmi_passwd",
            "passwd",
            "pass_word",
            "admin_pass",
            "adminPass",
            "new_pass",
            "pass",
            "ipmi_pwd",
            "sys_pswd",
            "ipmi_pw",
            "password2",
        ]);
        not_secret(&[
            "bypass",
            "boot_bypass",
            "pass_through",
            "passthrough",
            "compassion",
        ]);
    }

    #[test]
    fn passphrases() {
        secret(&[
            "passphrase",
            "ssh_key_passphrase",
            "Passphrase",
            "pass-phrase",
        ]);
        not_secret(&["phrase", "catchphrase_hint"]);
    }

    #[test]
    fn secrets() {
        secret(&["secret", "client_secret", "secret_uuid", "Shared-Secret"]);
        not_secret(&["secure_boot", "sector_size"]);
    }

    #[test]
    fn tokens() {
        secret(&[
            "token",
            "auth_token",
            "redfish_token",
            "API-TOKEN",
            "x-auth-token",
        ]);
        not_secret(&["take_on", "stock_level"]);
    }

    #[test]
    fn keys_ending_in_key_but_not_public_keys() {
        secret(&[
            "key",
            "KEY",
            "snmp_auth_key",
            "snmp_priv_key",
            "snmpAuthKey",
            "SNMP-AUTH-KEY",
            "api_key_2",
            "apikey",
            "ssh_key",
            "ipmi_hex_kg_key",
            "ipmi_kg_key",
            "kgkey",
            "encrypted_key",
            "sslkey",
        ]);
        not_secret(&[
            "public_key",
            "ssh_public_key",
            "sshPublicKey",
            "pubkey",
            "ssh_pub_key",
            "key_name",
            "ssh_key_id",
            "ansible_key_file",
            "deploy_kernel",
            "keystone_url",
            "keyboard_layout",
        ]);
    }

    #[test]
    fn ipmi_kg_but_not_a_weight() {
        secret(&["kg", "KG", "ipmi_kg", "ipmiKg", "bmc_kg", "kg_2"]);
        not_secret(&["weight_kg", "max_load_kg", "kgs"]);
    }

    #[test]
    fn private_keys() {
        secret(&[
            "private_key",
            "ssh_private_key",
            "private_key_file",
            "privateKeyPem",
            "privkey_pem",
        ]);
        not_secret(&["private_network", "privacy", "public_key_pem"]);
    }

    #[test]
    fn community_strings() {
        secret(&[
            "snmp_community",
            "snmp_community_read",
            "snmp_community_write",
            "irmc_snmp_community",
            "community",
        ]);
        not_secret(&[
            "snmp_version",
            "snmp_user",
            "snmp_security",
            "communication_port",
        ]);
    }

    #[test]
    fn credentials() {
        secret(&[
            "credential",
            "credentials",
            "bmc_credentials",
            "keystonecredential",
        ]);
        not_secret(&["credit", "created_at"]);
    }

    #[test]
    fn authentications_but_not_settings_about_them() {
        secret(&[
            "auth",
            "http_auth",
            "basic_auth",
            "basicAuth",
            "oauth",
            "proxy_authorization",
            "Authorization",
            "auth_key",
            "auth_password",
        ]);
        not_secret(&[
            "redfish_auth_type",
            "snmp_auth_protocol",
            "irmc_snmp_auth_proto",
            "auth_url",
            "authentication_method",
            "author",
        ]);
    }

    #[test]
    fn the_usual_ironic_fields_are_not_secrets() {
        not_secret(&[
            "ipmi_address",
            "ipmi_username",
            "ipmi_port",
            "ipmi_bridging",
            "ipmi_target_address",
            "ipmi_protocol_version",
            "ipmi_priv_level",
            "ipmi_cipher_suite",
            "redfish_address",
            "redfish_system_id",
            "redfish_username",
            "redfish_verify_ca",
            "deploy_ramdisk",
            "rescue_kernel",
            "snmp_driver",
            "snmp_outlet",
            "snmp_priv_protocol",
            "snmp_context_engine_id",
            "cpu_arch",
            "cpus",
            "memory_mb",
            "local_gb",
            "capabilities",
            "root_device",
            "vendor",
            "",
            "0",
            "_",
        ]);
    }

    #[test]
    fn only_ascii_letters_count() {
        // Non-ASCII characters are left out like separators: the Kelvin sign is not a `k`, a
        // full-width `ｋｅｙ` is not `key`.
        not_secret(&["snmp_auth_\u{212a}ey", "ｋｅｙ", "pässword"]);
        // Which also means that they join what they separate.
        secret(&["pass\u{e9}word", "Pass Word"]);
    }

    #[test]
    fn masking_reaches_every_depth_and_replaces_values_whole() {
        let mut value = json!({
            "ipmi_address": "10.0.0.1",
            "snmp_auth_key": "a",
            "bmc_credentials": {"user": "u", "pass": "p"},
            "extra": {"list": [{"token": 7}, {"note": "keep"}], "kg": null},
        });
        assert!(contains_secret(&value));
        mask_secrets(&mut value, "***");
        assert_eq!(
            value,
            json!({
                "ipmi_address": "10.0.0.1",
                "snmp_auth_key": "***",
                "bmc_credentials": "***",
                "extra": {"list": [{"token": "***"}, {"note": "keep"}], "kg": "***"},
            })
        );
        assert!(!contains_secret(
            &json!({"a": [1, {"b": "token"}], "public_key": "ssh-ed25519 x"})
        ));
        assert!(contains_secret(
            &json!([{"a": {"snmp_community": "public"}}])
        ));
    }
}
