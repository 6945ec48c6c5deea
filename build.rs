//! Records the versions that every report and ticket cites: rustc and the
//! resolved versions of the crates that compute the numbers (from Cargo.lock).

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut versions = Vec::new();
    for krate in ["candle-core", "candle-nn", "candle-transformers", "tokenizers", "gguf-rs", "safetensors"] {
        let needle = format!("name = \"{krate}\"\nversion = \"");
        let v = lock
            .find(&needle)
            .map(|i| &lock[i + needle.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("unknown");
        versions.push(format!("{krate} {v}"));
    }
    println!("cargo:rustc-env=GROUNDTRUTH_DEP_VERSIONS={}", versions.join(", "));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rv = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_else(|| "rustc unknown".into());
    println!("cargo:rustc-env=GROUNDTRUTH_RUSTC={}", rv.trim());
}
