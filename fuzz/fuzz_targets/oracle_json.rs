//! An oracle file through the strict reader, the contract's rules and the checks against
//! a model (tiny-seeded's limits: 256 tokens, context 512).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(oracle) = groundtruth::oracle::parse(data, std::path::Path::new("fuzz.json")) else {
        return;
    };
    let _ = oracle.validate_for(&groundtruth::oracle::ModelLimits {
        vocab_size: 256,
        context: 512,
    });
});
