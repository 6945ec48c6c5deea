//! A claims file through the strict TOML reader and the rules between fields.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = groundtruth::claim::parse_str(text, std::path::Path::new("fuzz.toml"));
});
