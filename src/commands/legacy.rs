//! The original MoltenIron's command forms that have a modern equivalent: add_baremetal,
//! add_keyvalue_pairs and add_json_blob (all end in `inventory::add_legacy`); status_baremetal runs
//! `status --baremetal`. Field names are the original's flat ones (see `fields::Field::parse`).

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use super::inventory::add_legacy;
use super::{Ctx, invalid};
use crate::fields::split_pair;

#[derive(Debug, Args)]
pub struct AddBaremetalArgs {
    pub name: String,
    pub ipmi_ip: String,
    pub ipmi_user: String,
    pub ipmi_password: String,
    /// Comma-separated IP addresses.
    pub allocation_pool: String,
    pub port_hwaddr: String,
    pub cpu_arch: String,
    pub cpus: String,
    pub ram_mb: String,
    pub disk_gb: String,
    pub node_pool: Option<String>,
}

impl AddBaremetalArgs {
    /// `add_baremetal NAME IPMI_IP USER PASSWORD ALLOCATION_POOL MAC ARCH CPUS RAM_MB DISK_GB [NODE_POOL]`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let fields = [
            ("ipmi_ip", &self.ipmi_ip),
            ("ipmi_user", &self.ipmi_user),
            ("ipmi_password", &self.ipmi_password),
            ("allocation_pool", &self.allocation_pool),
            ("port_hwaddr", &self.port_hwaddr),
            ("cpu_arch", &self.cpu_arch),
            ("cpus", &self.cpus),
            ("ram_mb", &self.ram_mb),
            ("disk_gb", &self.disk_gb),
        ]
        .into_iter()
        .chain(self.node_pool.as_ref().map(|pool| ("node_pool", pool)))
        .map(|(k, v)| (k.to_owned(), Value::String(v.clone())));
        add_legacy(ctx, &self.name, fields.collect())
    }
}

#[derive(Debug, Args)]
pub struct AddKeyvaluePairsArgs {
    pub name: String,
    pub ipmi_ip: String,
    /// Comma-separated IP addresses.
    pub allocation_pool: String,
    /// key=value pairs.
    #[arg(required = true)]
    pub pairs: Vec<String>,
}

impl AddKeyvaluePairsArgs {
    /// `add_keyvalue_pairs NAME IPMI_IP ALLOCATION_POOL key=value...`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let mut fields = base(&self.ipmi_ip, &self.allocation_pool);
        for pair in &self.pairs {
            fields.push(split_pair(pair).map_err(invalid)?);
        }
        add_legacy(ctx, &self.name, fields)
    }
}

#[derive(Debug, Args)]
pub struct AddJsonBlobArgs {
    pub name: String,
    pub ipmi_ip: String,
    /// Comma-separated IP addresses.
    pub allocation_pool: String,
    pub json: String,
    pub node_pool: Option<String>,
}

impl AddJsonBlobArgs {
    /// `add_json_blob NAME IPMI_IP ALLOCATION_POOL JSON [NODE_POOL]`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&self.json) else {
            return Err(invalid(
                "the JSON blob must be a JSON object of field names and values".to_owned(),
            ));
        };
        let mut fields = base(&self.ipmi_ip, &self.allocation_pool);
        fields.extend(map);
        if let Some(pool) = &self.node_pool {
            fields.push(("node_pool".to_owned(), Value::String(pool.clone())));
        }
        add_legacy(ctx, &self.name, fields)
    }
}

/// The two fields every legacy add form gives positionally.
fn base(ipmi_ip: &str, allocation_pool: &str) -> Vec<(String, Value)> {
    vec![
        ("ipmi_ip".to_owned(), Value::String(ipmi_ip.to_owned())),
        (
            "allocation_pool".to_owned(),
            Value::String(allocation_pool.to_owned()),
        ),
    ]
}
