//! JSON helpers for the binary's `-o json` output.

use serde_json::Value;

/// Parses a command's `-o json` output, failing the test with the text when it is not JSON.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
