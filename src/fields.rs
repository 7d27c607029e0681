//! Field names as get-field, set-field and the legacy add commands know them, including the original
//! MoltenIron's flat names (ipmi_ip, port_hwaddr, ram_mb, ...), and reading/writing them on a node.

use serde_json::{Map, Value};

use crate::domain::{HARDWARE_PROPERTIES, timestamp};
use crate::inventory::{IRONIC_NODE_FIELDS, NodeSpec, parse_ip_list};
use crate::store::nodes::Node;

/// How `set-field` interprets VALUE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueType {
    /// Text (numeric fields such as cpus still become numbers).
    #[value(alias = "str")]
    String,
    /// An integer.
    #[value(alias = "integer")]
    Int,
    /// Any JSON value (an object, a list, true, ...).
    Json,
}

/// A field of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Name,
    Pool,
    Driver,
    /// A `driver_info` key.
    DriverInfo(String),
    /// A `properties` key (also where unknown legacy keys go: the original's free-form blob).
    Property(String),
    /// The first port's MAC address.
    Mac,
    AllocationPool,
    /// Another Ironic node field, kept verbatim.
    Ironic(String),
    // Read-only allocation state.
    Id,
    State,
    Owner,
    AllocatedAt,
    LeaseExpiresAt,
}

impl Field {
    /// Resolves a field name: an alias, `driver_info.KEY`, `properties.KEY`, an Ironic node field, a
    /// name that looks like a BMC setting (see [`is_driver_info_key`]), or any other simple name, which
    /// means `properties.NAME` (the original's free-form blob).
    pub fn parse(name: &str) -> Result<Field, String> {
        if let Some(key) = name
            .strip_prefix("driver_info.")
            .filter(|k| is_simple_key(k))
        {
            return Ok(Field::DriverInfo(key.to_owned()));
        }
        if let Some(key) = name
            .strip_prefix("properties.")
            .filter(|k| is_simple_key(k))
        {
            return Ok(Field::Property(key.to_owned()));
        }
        let field = match name {
            "name" => Field::Name,
            "pool" | "node_pool" => Field::Pool,
            "driver" => Field::Driver,
            "ipmi_ip" | "ipmi_address" => Field::DriverInfo("ipmi_address".to_owned()),
            "ipmi_user" | "ipmi_username" => Field::DriverInfo("ipmi_username".to_owned()),
            "ipmi_password" => Field::DriverInfo("ipmi_password".to_owned()),
            "port_hwaddr" | "mac" => Field::Mac,
            "ram_mb" | "memory_mb" => Field::Property("memory_mb".to_owned()),
            "disk_gb" | "local_gb" => Field::Property("local_gb".to_owned()),
            "allocation_pool" => Field::AllocationPool,
            "id" => Field::Id,
            "state" | "status" => Field::State,
            "owner" | "provisioned" => Field::Owner,
            "allocated_at" | "timestamp" => Field::AllocatedAt,
            "lease_expires_at" => Field::LeaseExpiresAt,
            "driver_info" | "properties" | "ports" => {
                return Err(format!(
                    "{name} is a group of fields; name one of them, e.g. {name}.KEY"
                ));
            }
            other if IRONIC_NODE_FIELDS.contains(&other) => Field::Ironic(other.to_owned()),
            other if is_simple_key(other) && is_driver_info_key(other) => {
                Field::DriverInfo(other.to_owned())
            }
            other if is_simple_key(other) => Field::Property(other.to_owned()),
            other => return Err(format!("unknown field {other:?}")),
        };
        Ok(field)
    }

    /// Whether `name` resolves only by the last rule of [`Field::parse`] (any other simple name means
    /// `properties.NAME`): not one of molteniron's fields, an alias, an Ironic field, a BMC setting or a
    /// hardware property. `set-field` accepts such a name only for a key the node already has, as the
    /// original MoltenIron did, so a typo (`cpu` for `cpus`) does not create a property.
    pub fn is_guess(name: &str) -> bool {
        !HARDWARE_PROPERTIES.contains(&name)
            && matches!(Field::parse(name), Ok(Field::Property(key)) if key == name)
    }

    /// The canonical name, as history records it.
    pub fn canonical(&self) -> String {
        match self {
            Field::Name => "name".into(),
            Field::Pool => "pool".into(),
            Field::Driver => "driver".into(),
            Field::DriverInfo(key) => format!("driver_info.{key}"),
            Field::Property(key) => format!("properties.{key}"),
            Field::Mac => "ports[0].address".into(),
            Field::AllocationPool => "allocation_pool".into(),
            Field::Ironic(key) => key.clone(),
            Field::Id => "id".into(),
            Field::State => "state".into(),
            Field::Owner => "owner".into(),
            Field::AllocatedAt => "allocated_at".into(),
            Field::LeaseExpiresAt => "lease_expires_at".into(),
        }
    }

    /// Whether the value is a credential that is masked unless asked for.
    pub fn is_secret(&self) -> bool {
        matches!(self, Field::DriverInfo(key) | Field::Property(key) | Field::Ironic(key) if is_secret_key(key))
    }

    /// The field's value on `node`, or `None` where the node has no such value.
    pub fn get(&self, node: &Node) -> Option<Value> {
        let key_of = |map: &Value, key: &str| map.get(key).cloned();
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| Value::from(timestamp(t)));
        match self {
            Field::Name => Some(node.name.clone().into()),
            Field::Pool => Some(node.pool.clone().into()),
            Field::Driver => Some(node.driver.clone().into()),
            Field::DriverInfo(key) => key_of(&node.driver_info, key),
            Field::Property(key) => key_of(&node.properties, key),
            Field::Mac => node.ports.get(0).and_then(|p| p.get("address")).cloned(),
            Field::AllocationPool => Some(node.allocation_pool.join(",").into()),
            Field::Ironic(key) => key_of(&node.ironic_fields, key),
            Field::Id => Some(node.id.into()),
            Field::State => Some(node.state.as_str().into()),
            Field::Owner => node.owner.clone().map(Value::from),
            Field::AllocatedAt => time(node.allocated_at),
            Field::LeaseExpiresAt => time(node.lease_expires_at),
        }
    }

    /// Sets the field on `spec`; the caller validates the result. State and owner are not settable.
    pub fn set(&self, spec: &mut NodeSpec, value: Value) -> Result<(), String> {
        match self {
            Field::Name => spec.name = as_text(self, value)?,
            Field::Pool => spec.pool = as_text(self, value)?,
            Field::Driver => spec.driver = as_text(self, value)?,
            Field::DriverInfo(key) => insert(&mut spec.driver_info, key, value),
            Field::Property(key) => insert(&mut spec.properties, key, value),
            Field::Ironic(key) => insert(&mut spec.ironic, key, value),
            Field::Mac => {
                let mac = as_text(self, value)?;
                match spec.ports.first_mut() {
                    Some(port) => {
                        port.insert("address".to_owned(), Value::String(mac));
                    }
                    None => spec
                        .ports
                        .push(Map::from_iter([("address".to_owned(), Value::String(mac))])),
                }
            }
            Field::AllocationPool => {
                spec.allocation_pool = match value {
                    Value::String(text) => parse_ip_list(&text)?,
                    Value::Array(items) => items
                        .into_iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .ok_or("allocation_pool must list IP addresses as text")
                        })
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(format!("allocation_pool must be IP addresses, not {other}"));
                    }
                }
            }
            Field::Id
            | Field::State
            | Field::Owner
            | Field::AllocatedAt
            | Field::LeaseExpiresAt => {
                return Err(format!(
                    "{} cannot be set; use allocate, release, clean or maintenance",
                    self.canonical()
                ));
            }
        }
        Ok(())
    }
}

/// Which keys name a secret, and masking them: one rule for the whole crate, kept in [`crate::secret`].
pub use crate::secret::{contains_secret, is_secret_key, mask_secrets};

/// Whether `key` is a plain key of `properties` or `driver_info` as field names and filters name them:
/// 1 to 255 letters, digits, `_` and `-`.
pub fn is_simple_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 255
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
}

/// Whether a bare legacy key names a BMC setting, which belongs in driver_info rather than properties:
/// passwords, addresses and the driver-prefixed keys Ironic's drivers use.
pub fn is_driver_info_key(key: &str) -> bool {
    // Where a bare name goes is not the masking rule (values are masked in driver_info and properties
    // alike): a name containing "password" goes to driver_info, as documented, and no other secret
    // moves a name there, so `get-field`/`set-field` of an existing properties key keep finding it.
    key.to_ascii_lowercase().contains("password")
        || key.ends_with("_username")
        || key.ends_with("_address")
        || ["ipmi_", "redfish_", "deploy_"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
}

/// Reads a command-line VALUE as `ty` says.
pub fn typed_value(raw: &str, ty: ValueType) -> Result<Value, String> {
    match ty {
        ValueType::String => Ok(Value::String(raw.to_owned())),
        ValueType::Int => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "VALUE is not an integer (not echoed: it may be a secret)".to_owned()),
        ValueType::Json => serde_json::from_str(raw).map_err(|e| format!("VALUE is not JSON: {e}")),
    }
}

/// Applies legacy `key=value` / JSON-blob fields to a node under construction.
pub fn apply_all(
    spec: &mut NodeSpec,
    fields: impl IntoIterator<Item = (String, Value)>,
) -> Result<(), String> {
    for (name, value) in fields {
        let field = Field::parse(&name)?;
        if field == Field::Name {
            return Err("the node's name is its own argument, not a field here".to_owned());
        }
        field.set(spec, value).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Splits a `key=value` argument at its first `=`. One pair of double quotes around the whole value is
/// removed (`ipmi_user="user"` gives `user`): the original MoltenIron's own examples write values so, and
/// the shell leaves those quotes in. Any other quote is part of the value and is validated as given.
/// A malformed argument is not echoed: it may be a secret with a typo.
pub fn split_pair(pair: &str) -> Result<(String, Value), String> {
    let problem = match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => {
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            return Ok((key.to_owned(), Value::String(value.to_owned())));
        }
        Some(_) => "an empty key",
        None => "no '='",
    };
    Err(format!(
        "expected key=value, got {problem} (the argument is not echoed: it may hold a secret)"
    ))
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.insert(key.to_owned(), value);
}

fn as_text(field: &Field, value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(format!("{} must be text, not {other}", field.canonical())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_are_aliases() {
        assert_eq!(
            Field::parse("ipmi_ip").unwrap(),
            Field::DriverInfo("ipmi_address".into())
        );
        assert_eq!(
            Field::parse("ram_mb").unwrap(),
            Field::Property("memory_mb".into())
        );
        assert_eq!(Field::parse("node_pool").unwrap(), Field::Pool);
        assert_eq!(
            Field::parse("driver_info.x").unwrap(),
            Field::DriverInfo("x".into())
        );
        assert_eq!(
            Field::parse("resource_class").unwrap(),
            Field::Ironic("resource_class".into())
        );
        assert_eq!(
            Field::parse("anything").unwrap(),
            Field::Property("anything".into())
        );
        assert_eq!(
            Field::parse("redfish_password").unwrap(),
            Field::DriverInfo("redfish_password".into())
        );
        assert_eq!(
            Field::parse("drac_address").unwrap(),
            Field::DriverInfo("drac_address".into())
        );
        assert!(Field::parse("driver_info").is_err());
        assert!(Field::parse("a b").is_err());
        assert!(Field::parse("driver_info.").is_err());
    }

    #[test]
    fn only_the_catch_all_rule_is_a_guess() {
        for name in ["cpu", "anything", "rack"] {
            assert!(Field::is_guess(name), "{name}");
        }
        for name in [
            "cpus",
            "cpu_arch",
            "ram_mb",
            "memory_mb",
            "ipmi_ip",
            "properties.cpu",
            "driver_info.x",
            "resource_class",
            "redfish_password",
            "drac_address",
            "name",
        ] {
            assert!(!Field::is_guess(name), "{name}");
        }
    }

    #[test]
    fn state_is_not_settable() {
        let mut spec = NodeSpec::new("n");
        assert!(Field::State.set(&mut spec, "ready".into()).is_err());
        assert!(Field::Owner.set(&mut spec, "me".into()).is_err());
    }

    #[test]
    fn split_pair_removes_one_pair_of_wrapping_double_quotes() {
        let value = |pair: &str| split_pair(pair).unwrap().1;
        // The original's tox.ini writes 'ipmi_user="user"'; the shell leaves the inner quotes in.
        assert_eq!(value(r#"ipmi_user="user""#), "user");
        assert_eq!(value(r#"mac="de:ad:be:ef:00:01""#), "de:ad:be:ef:00:01");
        assert_eq!(value(r#"k="""#), "");
        assert_eq!(value(r#"k=""x"""#), r#""x""#, "only one pair goes");
        assert_eq!(value(r#"k="a"b""#), r#"a"b"#);
        assert_eq!(value(r#"k="a=b""#), "a=b");
        // Any other quote is part of the value.
        for kept in [
            r#"say "hi""#,
            r#""open"#,
            r#"close""#,
            r#"""#,
            "'single'",
            "plain",
        ] {
            assert_eq!(value(&format!("k={kept}")), kept, "{kept}");
        }
        assert_eq!(
            split_pair(r#""k"=v"#).unwrap().0,
            r#""k""#,
            "keys are not touched"
        );
        assert!(split_pair(r#"="v""#).is_err());
    }

    #[test]
    fn mac_and_allocation_pool_setters() {
        let mut spec = NodeSpec::new("n");
        Field::Mac
            .set(&mut spec, "de:ad:be:ef:00:01".into())
            .unwrap();
        Field::AllocationPool
            .set(&mut spec, "10.0.0.1, 10.0.0.2".into())
            .unwrap();
        assert_eq!(spec.macs().collect::<Vec<_>>(), ["de:ad:be:ef:00:01"]);
        assert_eq!(spec.allocation_pool, ["10.0.0.1", "10.0.0.2"]);
    }
}
