//! The config file and durations: arbitrary text never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molteniron::config::{Config, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Config::from_yaml(text);
    let _ = parse_duration(text);
});
