//! The legacy add commands' inputs: `key=value` pairs (one per line) and a JSON blob, applied to a node
//! and validated exactly as add_keyvalue_pairs / add_json_blob do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molteniron::fields::{apply_all, split_pair};
use molteniron::inventory::NodeSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pairs: Result<Vec<_>, _> = text.lines().map(split_pair).collect();
    if let Ok(pairs) = pairs {
        let mut spec = NodeSpec::new("fuzz");
        if apply_all(&mut spec, pairs).is_ok() {
            let _ = spec.validate();
        }
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let mut spec = NodeSpec::new("fuzz");
        if apply_all(&mut spec, map).is_ok() {
            let _ = spec.validate();
        }
    }
});
