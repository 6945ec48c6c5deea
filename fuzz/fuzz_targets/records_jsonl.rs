//! A GenerationRecord JSONL file through the strict reader, then the metrics of whatever
//! it accepted (scoring must not panic on any completion the reader lets through).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(records) = groundtruth::metrics::parse_records(data, std::path::Path::new("fuzz.jsonl"))
    else {
        return;
    };
    let mut cfg = groundtruth::metrics::MetricsConfig::default();
    cfg.bootstrap.resamples = 20;
    let _ = groundtruth::metrics::report(&records, "fuzz", &cfg).to_json();
});
