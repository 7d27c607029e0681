//! nodes.yaml: parse and validate arbitrary text; any outcome but a panic (or a hang) is fine, and an
//! accepted inventory must survive export and re-import unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molteniron::inventory::{parse_inventory, render_inventory};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(nodes) = parse_inventory(text) {
        let exported = render_inventory(nodes.clone()).expect("an accepted inventory renders");
        let again = parse_inventory(&exported).expect("an exported inventory imports again");
        assert_eq!(again, nodes, "export then import changed the inventory");
    }
});
