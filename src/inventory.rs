//! The node inventory: the nodes.yaml format (Ironic's bulk-enrolment file plus `pool` and
//! `allocation_pool`) and the validation every node passes before anything is written.
//!
//! Parsing is strict about keys: a key that is neither Ironic's nor ours is an error naming it (and the
//! line), so typos never become silently ignored data. Ironic fields molteniron does not use are kept
//! verbatim in [`NodeSpec::ironic`] and exported again.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Ironic node fields that are accepted, kept and exported but not interpreted.
pub const IRONIC_NODE_FIELDS: &[&str] = &[
    "automated_clean",
    "bios_interface",
    "boot_interface",
    "boot_mode",
    "chassis_uuid",
    "conductor_group",
    "console_enabled",
    "console_interface",
    "deploy_interface",
    "description",
    "disable_power_off",
    "extra",
    "firmware_interface",
    "inspect_interface",
    "instance_info",
    "instance_uuid",
    "lessee",
    "maintenance",
    "maintenance_reason",
    "management_interface",
    "network_data",
    "network_interface",
    "owner",
    "parent_node",
    "portgroups",
    "power_interface",
    "protected",
    "protected_reason",
    "raid_interface",
    "rescue_interface",
    "resource_class",
    "retired",
    "retired_reason",
    "shard",
    "storage_interface",
    "traits",
    "uuid",
    "vendor_interface",
];

/// Properties that must be non-negative integers (strings of digits are converted).
pub const NUMERIC_PROPERTIES: &[&str] = &["cpus", "memory_mb", "local_gb"];

/// A whole nodes.yaml file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub nodes: Vec<NodeSpec>,
}

/// One node's inventory: everything but its allocation state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSpec {
    pub name: String,
    pub pool: String,
    pub driver: String,
    pub driver_info: Map<String, Value>,
    pub properties: Map<String, Value>,
    /// Ironic ports; each object has at least `address` (a MAC).
    pub ports: Vec<Map<String, Value>>,
    pub allocation_pool: Vec<String>,
    /// Other Ironic node fields, kept verbatim.
    #[serde(flatten)]
    pub ironic: Map<String, Value>,
}

impl NodeSpec {
    /// A node with the given name and every other field at its default.
    pub fn new(name: &str) -> NodeSpec {
        NodeSpec {
            name: name.to_owned(),
            pool: "default".to_owned(),
            driver: "ipmi".to_owned(),
            driver_info: Map::new(),
            properties: Map::new(),
            ports: Vec::new(),
            allocation_pool: Vec::new(),
            ironic: Map::new(),
        }
    }

    /// Checks every rule of the node model and normalises what has one spelling (MACs to lower case,
    /// numeric properties to numbers, IP addresses to canonical form). The error names the problem, not
    /// the node: callers add which node it was.
    pub fn validate(&mut self) -> Result<(), String> {
        check_name(&self.name)?;
        check_text("pool", &self.pool)?;
        if self.driver.is_empty()
            || self.driver.len() > 255
            || !self
                .driver
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("invalid driver {:?}", self.driver));
        }
        if let Some(traits) = self.ironic.get("traits") {
            let is_list_of_text = traits
                .as_array()
                .is_some_and(|t| t.iter().all(Value::is_string));
            if !is_list_of_text {
                return Err(
                    "traits must be a list of trait names, e.g. [CUSTOM_GPU] (with set-field: \
                     --type json '[\"CUSTOM_GPU\"]')"
                        .to_owned(),
                );
            }
        }
        for key in required_driver_info(&self.driver) {
            match self.driver_info.get(*key) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                Some(Value::String(_)) | None => {
                    return Err(format!("driver {} needs driver_info.{key}", self.driver));
                }
                Some(other) => return Err(format!("driver_info.{key} must be text, not {other}")),
            }
        }
        if self.driver == "ipmi" {
            if let Some(Value::String(address)) = self.driver_info.get("ipmi_address") {
                check_host("driver_info.ipmi_address", address)?;
            }
        }
        for key in NUMERIC_PROPERTIES {
            if let Some(value) = self.properties.get_mut(*key) {
                *value = Value::from(to_count(key, value)?);
            }
        }
        for (i, port) in self.ports.iter_mut().enumerate() {
            match port.get("address") {
                Some(Value::String(mac)) => {
                    let mac = normalize_mac(mac)?;
                    port.insert("address".to_owned(), Value::String(mac));
                }
                _ => return Err(format!("ports[{i}] needs an address (a MAC)")),
            }
        }
        let mut macs = BTreeSet::new();
        for mac in self.macs() {
            if !macs.insert(mac) {
                return Err(format!("MAC {mac} is listed twice"));
            }
        }
        for ip in self.allocation_pool.iter_mut() {
            *ip = parse_ip(ip)?.to_string();
        }
        for (key, value) in self
            .driver_info
            .iter()
            .chain(&self.properties)
            .chain(&self.ironic)
        {
            check_json(key, value)?;
        }
        for port in &self.ports {
            for (key, value) in port {
                check_json(key, value)?;
            }
        }
        Ok(())
    }

    /// The ports' MAC addresses, in order.
    pub fn macs(&self) -> impl Iterator<Item = &str> {
        self.ports
            .iter()
            .filter_map(|p| p.get("address").and_then(Value::as_str))
    }
}

/// The driver_info keys a known driver cannot work without; unknown drivers need none.
pub fn required_driver_info(driver: &str) -> &'static [&'static str] {
    match driver {
        "ipmi" => &["ipmi_address"],
        "redfish" => &["redfish_address", "redfish_system_id"],
        _ => &[],
    }
}

/// A node's BMC access, whatever its driver calls the keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bmc {
    pub address: String,
    pub username: String,
    pub password: String,
    /// The IPMI port (`ipmi_port`, e.g. VirtualBMC's 6230), empty when not given (ipmitool's 623).
    pub port: String,
}

/// Reads the BMC address and credentials from driver_info: `ipmi_*` for ipmi, `redfish_*` for redfish,
/// and for other drivers the first keys ending in `_address`, `_username` and `_password`.
pub fn bmc(driver: &str, driver_info: &Map<String, Value>) -> Bmc {
    let text = |key: &str| {
        driver_info
            .get(key)
            .map(crate::domain::plain)
            .unwrap_or_default()
    };
    let by_suffix = |suffix: &str| {
        driver_info
            .keys()
            .find(|k| k.ends_with(suffix))
            .map(|k| text(k))
            .unwrap_or_default()
    };
    match driver {
        "ipmi" | "redfish" => Bmc {
            address: text(&format!("{driver}_address")),
            username: text(&format!("{driver}_username")),
            password: text(&format!("{driver}_password")),
            port: text("ipmi_port"),
        },
        _ => Bmc {
            address: by_suffix("_address"),
            username: by_suffix("_username"),
            password: by_suffix("_password"),
            port: text("ipmi_port"),
        },
    }
}

/// Checks an Ironic logical name: letters, digits and `-._~`, 1 to 255 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "node name must be 1 to 255 characters, not {}",
            name.chars().count()
        ));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "node name {name:?} is only digits, which would be read as a node id"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
    {
        return Err(format!(
            "node name {name:?} contains {c:?}; use letters, digits and -._~"
        ));
    }
    Ok(())
}

/// Checks an owner: free text of 1 to 255 characters, stored verbatim (no NUL, which PostgreSQL rejects).
pub fn check_owner(owner: &str) -> Result<(), String> {
    if owner.is_empty() || owner.chars().count() > 255 {
        return Err("owner must be 1 to 255 characters".to_owned());
    }
    if owner.chars().any(char::is_control) {
        return Err("owner must not contain control characters (newlines, tabs, ...)".to_owned());
    }
    Ok(())
}

/// Checks a short piece of text such as a pool name.
pub fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.is_empty() || text.chars().count() > 255 || text.chars().any(char::is_control) {
        return Err(format!("{what} must be 1 to 255 printable characters"));
    }
    Ok(())
}

/// Parses an IP address, with a message naming it.
pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid IP address {text:?}"))
}

/// Splits a comma-separated list of IP addresses (the legacy ALLOCATION_POOL form); empty means none.
pub fn parse_ip_list(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_ip(s).map(|ip| ip.to_string()))
        .collect()
}

/// Checks that a BMC address is an IP address or a host name.
fn check_host(what: &str, text: &str) -> Result<(), String> {
    if parse_ip(text).is_ok() {
        return Ok(());
    }
    let hostname = text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        })
        && !text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if hostname {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} {text:?}: not an IP address or host name"
        ))
    }
}

/// Normalises a MAC address to lower-case `aa:bb:cc:dd:ee:ff` (also accepts `-` separators).
pub fn normalize_mac(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.trim().split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("invalid MAC address {text:?}"));
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

/// Converts a count given as a number or a string of digits.
fn to_count(key: &str, value: &Value) -> Result<u64, String> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if n <= i64::MAX as u64 => Ok(n),
        _ => Err(format!("{key} must be a non-negative integer, not {value}")),
    }
}

/// PostgreSQL cannot store NUL in text or JSON; reject it with a clear message instead of a database error.
fn check_json(key: &str, value: &Value) -> Result<(), String> {
    let bad = |s: &str| s.contains('\0');
    let ok = match value {
        Value::String(s) => !bad(s),
        Value::Array(items) => return items.iter().try_for_each(|v| check_json(key, v)),
        Value::Object(map) => {
            return map.iter().try_for_each(|(k, v)| {
                if bad(k) {
                    Err(format!("{key} contains NUL"))
                } else {
                    check_json(key, v)
                }
            });
        }
        _ => true,
    };
    if ok && !bad(key) {
        Ok(())
    } else {
        Err(format!("{key} contains NUL"))
    }
}

impl<'de> Deserialize<'de> for NodeSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeSpec;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a node (a mapping with at least `name`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeSpec, A::Error> {
        let mut node = NodeSpec::new("");
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            match key.as_str() {
                "name" => node.name = map.next_value()?,
                "pool" => node.pool = map.next_value()?,
                "driver" => node.driver = map.next_value()?,
                "driver_info" => node.driver_info = map.next_value::<Strict>()?.into_object()?,
                "properties" => node.properties = map.next_value::<Strict>()?.into_object()?,
                "ports" => node.ports = map.next_value::<Strict>()?.into_objects()?,
                "allocation_pool" => node.allocation_pool = map.next_value::<IpList>()?.0,
                other if IRONIC_NODE_FIELDS.contains(&other) => {
                    node.ironic.insert(key, map.next_value::<Strict>()?.0);
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field `{other}`: not an Ironic node field nor a molteniron key (pool, allocation_pool)"
                    )));
                }
            }
        }
        if !seen.contains("name") {
            return Err(de::Error::missing_field("name"));
        }
        Ok(node)
    }
}

/// Any YAML value as JSON, refusing what JSON or a careful reader would not keep: a key given twice (at
/// any depth) and numbers that are not finite (`.nan`, `.inf`).
struct Strict(Value);

impl Strict {
    fn into_object<E: de::Error>(self) -> Result<Map<String, Value>, E> {
        match self.0 {
            Value::Object(map) => Ok(map),
            other => Err(E::custom(format!(
                "expected a mapping, found {}",
                kind(&other)
            ))),
        }
    }

    fn into_objects<E: de::Error>(self) -> Result<Vec<Map<String, Value>>, E> {
        match self.0 {
            Value::Array(items) => items
                .into_iter()
                .map(|item| Strict(item).into_object())
                .collect(),
            other => Err(E::custom(format!(
                "expected a list, found {}",
                kind(&other)
            ))),
        }
    }
}

/// What a value is, for errors that must not show the value itself (it may hold a secret).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

const TOO_LARGE: &str = "a number is too large (more than 64 bits; quote it to keep it as text)";

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    // The number is not echoed: it may be a secret (a numeric password, an IPMI K_g).
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Value, E> {
        Err(E::custom(TOO_LARGE))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Value, E> {
        Err(E::custom(TOO_LARGE))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|s| s.0)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let Strict(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// `allocation_pool` as a YAML list, or as the legacy comma-separated string.
struct IpList(Vec<String>);

impl<'de> Deserialize<'de> for IpList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Text(String),
        }
        Ok(IpList(match Form::deserialize(deserializer)? {
            Form::List(list) => list,
            Form::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }))
    }
}

/// Parses and validates a whole nodes.yaml: a syntax or key error names the node and line; a rule error
/// names the node; two nodes with one name or one MAC are an error.
pub fn parse_inventory(text: &str) -> Result<Vec<NodeSpec>, String> {
    let inventory: Inventory =
        serde_yaml::from_str(text).map_err(|e| at_the_keys_line(text, &e.to_string()))?;
    let mut names = BTreeSet::new();
    let mut macs = BTreeSet::new();
    let mut nodes = inventory.nodes;
    for (i, node) in nodes.iter_mut().enumerate() {
        node.validate()
            .map_err(|e| format!("nodes[{i}] ({}): {e}", node.name))?;
        if !names.insert(node.name.clone()) {
            return Err(format!("nodes[{i}]: the name {} is used twice", node.name));
        }
        for mac in node.macs() {
            if !macs.insert(mac.to_owned()) {
                return Err(format!(
                    "nodes[{i}] ({}): MAC {mac} belongs to another node too",
                    node.name
                ));
            }
        }
    }
    Ok(nodes)
}

/// serde_yaml places an unknown-key error at the start of the node it is in; a misspelt key is easier
/// to find at its own line. Moves `at line L column C` to the first line at or after L that holds the key
/// named by "unknown field `KEY`" (the message is kept as it is when no such line is found).
fn at_the_keys_line(text: &str, message: &str) -> String {
    let key = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(key, _)| key);
    let location = message.rfind(" at line ").and_then(|i| {
        let rest = &message[i + " at line ".len()..];
        let (line, _) = rest.split_once(" column ")?;
        Some((i, line.parse::<usize>().ok()?))
    });
    let (Some(key), Some((at, line))) = (key, location) else {
        return message.to_owned();
    };
    let found = text
        .lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .find_map(|(n, l)| {
            let trimmed = l.trim_start().trim_start_matches("- ");
            let column = l.len() - trimmed.len() + 1;
            let rest = trimmed.strip_prefix(key)?;
            rest.trim_start()
                .starts_with(':')
                .then_some((n + 1, column))
        });
    match found {
        Some((n, column)) => format!("{} at line {n} column {column}", &message[..at]),
        None => message.to_owned(),
    }
}

/// Renders nodes as a nodes.yaml document that [`parse_inventory`] reads back to the same nodes.
pub fn render_inventory(nodes: Vec<NodeSpec>) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&Inventory { nodes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_reported_at_its_own_line() {
        let text = "nodes:\n  - name: a\n    driver: ipmi\n    pool: p\n    propertes:\n      cpus: 8\n  - name: b\n";
        let err = parse_inventory(text).unwrap_err();
        assert!(err.contains("unknown field `propertes`"), "{err}");
        assert!(err.ends_with("at line 5 column 5"), "{err}");
        let first = "nodes:\n  - nmae: a\n";
        let err = parse_inventory(first).unwrap_err();
        assert!(err.ends_with("at line 2 column 5"), "{err}");
    }

    const EXAMPLE: &str = "nodes:
  - name: n1
    driver_info: {ipmi_address: 10.0.0.1, ipmi_username: u, ipmi_password: p}
    properties: {cpu_arch: x86_64, cpus: '8', memory_mb: 1024, local_gb: 10, custom: x}
    ports: [{address: 'AA-BB-CC-DD-EE-FF'}]
    allocation_pool: [10.0.1.1, 10.0.1.2]
    resource_class: baremetal
";

    #[test]
    fn parses_normalises_and_round_trips() {
        let nodes = parse_inventory(EXAMPLE).unwrap();
        assert_eq!(nodes[0].pool, "default");
        assert_eq!(nodes[0].properties["cpus"], Value::from(8));
        assert_eq!(nodes[0].macs().collect::<Vec<_>>(), ["aa:bb:cc:dd:ee:ff"]);
        assert_eq!(nodes[0].ironic["resource_class"], Value::from("baremetal"));
        let again = parse_inventory(&render_inventory(nodes.clone()).unwrap()).unwrap();
        assert_eq!(again, nodes);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse_inventory("nodes:\n  - name: n1\n    drivr: ipmi\n").unwrap_err();
        assert!(
            err.contains("drivr") && err.contains("nodes[0]") && err.contains("at line 3 column 5"),
            "{err}"
        );
    }

    #[test]
    fn rule_errors_name_the_node() {
        for (yaml, want) in [
            ("nodes: [{name: n1}]", "needs driver_info.ipmi_address"),
            (
                "nodes: [{name: n1, driver: redfish, driver_info: {redfish_address: x}}]",
                "redfish_system_id",
            ),
            ("nodes: [{name: 'a b', driver: fake}]", "contains ' '"),
            (
                "nodes: [{name: n1, driver: fake, properties: {cpus: eight}}]",
                "cpus must be",
            ),
            (
                "nodes: [{name: n1, driver: fake, properties: {cpus: -1}}]",
                "cpus must be",
            ),
            (
                "nodes: [{name: n1, driver: fake, ports: [{address: zz}]}]",
                "invalid MAC",
            ),
            (
                "nodes: [{name: n1, driver: fake, allocation_pool: [10.0.0.300]}]",
                "invalid IP",
            ),
            (
                "nodes: [{name: n1, driver: fake}, {name: n1, driver: fake}]",
                "used twice",
            ),
            ("nodes: [{name: n1, name: n2, driver: fake}]", "duplicate"),
            (
                "nodes: [{name: n1, driver: fake, driver_info: {a: 1, a: 2}}]",
                "duplicate key `a`",
            ),
            (
                "nodes: [{name: n1, driver: fake, extra: {x: {y: 1, y: 1}}}]",
                "duplicate key `y`",
            ),
            (
                "nodes: [{name: n1, driver: fake, properties: {speed: .nan}}]",
                "not a finite number",
            ),
            (
                "nodes: [{name: n1, driver: fake, ports: [7]}]",
                "expected a mapping",
            ),
        ] {
            let err = parse_inventory(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
    }

    #[test]
    fn unknown_drivers_keep_driver_info() {
        let nodes =
            parse_inventory("nodes: [{name: n1, driver: idrac, driver_info: {drac_address: h}}]")
                .unwrap();
        assert_eq!(nodes[0].driver_info["drac_address"], Value::from("h"));
    }
}
