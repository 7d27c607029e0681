//! DevStack's two files, written for the nodes a job was given: the hardware info file
//! (`BMC_ADDRESS MAC USER PASSWORD` per node, read by ironic's DevStack plugin as `IRONIC_HWINFO_FILE`)
//! and the `IRONIC_HW_*` / `ALLOCATION_POOL` lines appended to localrc. Used by `allocate` (and, later, the
//! DevStack plugin).
//!
//! [`Files::open`] opens both before anything is allocated, so an unwritable path fails first;
//! [`check`] refuses nodes the hardware info format cannot carry, so the caller can refuse the allocation
//! in its transaction; [`Files::discard`] removes the files this run created when the allocation fails.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::store::nodes::Node;

/// The DevStack files one allocate writes, opened and not yet written.
#[derive(Debug, Default)]
pub struct Files {
    hardware_info: Option<(File, PathBuf)>,
    localrc: Option<(File, PathBuf)>,
    created: Vec<PathBuf>,
}

impl Files {
    /// Opens the files asked for: `hardware_info` to be replaced, `localrc` to be appended to.
    pub fn open(hardware_info: Option<&Path>, localrc: Option<&Path>) -> Result<Files> {
        let created = [hardware_info, localrc]
            .into_iter()
            .flatten()
            .filter(|p| !p.exists())
            .map(Path::to_path_buf)
            .collect();
        let mut files = Files {
            created,
            ..Files::default()
        };
        if let Some(path) = hardware_info {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path);
            let file = file.with_context(|| format!("opening {}", path.display()));
            files.hardware_info = Some((files.or_discard(file)?, path.to_path_buf()));
        }
        if let Some(path) = localrc {
            // Readable too: the writer looks at the last byte.
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(path);
            let file = file.with_context(|| format!("opening {}", path.display()));
            files.localrc = Some((files.or_discard(file)?, path.to_path_buf()));
        }
        Ok(files)
    }

    /// When a localrc is written for nodes of different shapes (arch, cpus, memory, disk): which node's
    /// values it holds, for a warning. localrc can describe only one shape; DevStack enrolls every node
    /// with it.
    pub fn shape_warning(&self, nodes: &[Node]) -> Option<String> {
        let first = nodes.first()?;
        let differs = nodes.iter().find(|n| n.hardware() != first.hardware())?;
        self.localrc.as_ref().map(|(_, path)| {
            format!(
                "the nodes differ in hardware ({} is not like {}): {} holds {}'s IRONIC_HW_* values",
                differs.name,
                first.name,
                path.display(),
                first.name
            )
        })
    }

    /// Whether any file was asked for.
    pub fn any(&self) -> bool {
        self.hardware_info.is_some() || self.localrc.is_some()
    }

    fn or_discard<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.remove_created();
        }
        result
    }

    fn remove_created(&self) {
        for path in &self.created {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Removes the files this run created (files that existed before are left as they were).
    pub fn discard(self) {
        self.remove_created();
    }

    /// Writes both files for `nodes`.
    pub fn write(self, nodes: &[Node]) -> Result<()> {
        if let Some((file, path)) = self.hardware_info {
            write_hardware_info(file, nodes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some((file, path)) = self.localrc {
            write_localrc(file, nodes).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// Refuses nodes whose hardware info line would be corrupt: the format is four fields separated by
/// spaces, so a BMC address, MAC, user or password with whitespace in it would shift
/// the fields and DevStack would read a wrong password. The message names the node and the field, never
/// the value.
pub fn check(nodes: &[Node]) -> Result<(), String> {
    for node in nodes {
        let bmc = node.bmc();
        let mac = node.first_mac();
        let fields = [
            ("BMC address", &bmc.address),
            ("MAC", &mac),
            ("BMC user", &bmc.username),
            ("BMC password", &bmc.password),
        ];
        for (what, value) in fields {
            if value.chars().any(char::is_whitespace) {
                return Err(format!(
                    "node {}: the {what} contains whitespace, which DevStack's hardware info file \
                     cannot carry",
                    node.name
                ));
            }
        }
    }
    Ok(())
}

/// DevStack's hardware info: `BMC_ADDRESS MAC USER PASSWORD`, one line per node (the file is replaced).
fn write_hardware_info(mut file: File, nodes: &[Node]) -> std::io::Result<()> {
    let mut text = String::new();
    for node in nodes {
        let bmc = node.bmc();
        let mac = node.first_mac();
        text.push_str(&format!(
            "{} {mac} {} {}\n",
            bmc.address, bmc.username, bmc.password
        ));
    }
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// DevStack's localrc settings: the first node's hardware and every node's allocation pool IPs.
fn write_localrc(mut file: File, nodes: &[Node]) -> std::io::Result<()> {
    let Some(first) = nodes.first() else {
        return Ok(());
    };
    // localrc is sourced by a shell: values with spaces or quotes are quoted, plain ones stay as they are.
    let mut hardware = Vec::new();
    for value in first.hardware() {
        let quoted = shlex::try_quote(&value).map_err(std::io::Error::other)?;
        hardware.push(quoted.into_owned());
    }
    let ranges: Vec<String> = nodes
        .iter()
        .flat_map(|n| n.allocation_pool.iter())
        .map(|ip| format!("start={ip},end={ip}"))
        .collect();
    // A file whose last line lacks its newline gets one, so that line and ours stay separate.
    let separator = if ends_without_newline(&mut file)? {
        "\n"
    } else {
        ""
    };
    let text = format!(
        "{separator}IRONIC_HW_ARCH={}\nIRONIC_HW_NODE_CPU={}\nIRONIC_HW_NODE_RAM={}\nIRONIC_HW_NODE_DISK={}\nALLOCATION_POOL=\"{}\"\n",
        hardware[0],
        hardware[1],
        hardware[2],
        hardware[3],
        ranges.join(" --allocation-pool ")
    );
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Whether `file` is non-empty and its last byte is not a newline.
fn ends_without_newline(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}
