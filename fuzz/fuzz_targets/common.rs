//! Shared by the targets: a per-process scratch folder (in memory where the machine has
//! /dev/shm) the input is written to, since the readers under test take paths.

use std::path::PathBuf;

pub fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("groundtruth-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Runs a loaded model on one token, as every command that scores does.
pub fn run_once(weights: &groundtruth::model::Weights) {
    let Ok(llama) = groundtruth::model::Llama::load(weights, &Default::default()) else {
        return;
    };
    if let Ok(tokens) = candle_core::Tensor::new(&[[0u32]], &candle_core::Device::Cpu) {
        let _ = llama.forward(&tokens, None);
    }
}
