//! JSON helpers for the binary's `-o json` output.

use serde_json::Value;

/// Parses a command's `-o json` output, failing the test with the text when it is not JSON.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The `name` of every node in a JSON list of nodes (allocate's, status's), in order.
pub fn names(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap_or_else(|| panic!("not a list of nodes: {nodes}"))
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}
