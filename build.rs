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
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rustc-env=GROUNDTRUTH_SOURCE_HASH={:016x}", source_hash());
}

/// FNV-1a over every file under `src/` (sorted paths and contents): caches of results
/// this code computed (trained checkpoints) are keyed by it, so a code change never
/// reuses numbers an older build produced.
fn source_hash() -> u64 {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(std::path::Path::new("src"), &mut files);
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for b in f.to_string_lossy().as_bytes().iter().chain([0u8].iter()).chain(bytes.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
