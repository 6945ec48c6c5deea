//! Records the versions that every report and ticket cites: rustc and the
//! resolved versions of the crates that compute the numbers (from Cargo.lock).

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut versions = Vec::new();
    for krate in [
        "candle-core",
        "candle-nn",
        "candle-transformers",
        "tokenizers",
        "gguf-rs",
        "safetensors",
    ] {
        let needle = format!("name = \"{krate}\"\nversion = \"");
        let v = lock
            .find(&needle)
            .map(|i| &lock[i + needle.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("unknown");
        versions.push(format!("{krate} {v}"));
    }
    println!(
        "cargo:rustc-env=GROUNDTRUTH_DEP_VERSIONS={}",
        versions.join(", ")
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rv = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_else(|| "rustc unknown".into());
    println!("cargo:rustc-env=GROUNDTRUTH_RUSTC={}", rv.trim());
    println!("cargo:rerun-if-changed=src");
    println!(
        "cargo:rustc-env=GROUNDTRUTH_SOURCE_HASH={:016x}",
        source_hash()
    );
    builtin_table();
}

/// The project files built into the binary, so an installed `groundtruth` works outside
/// its checkout: every file under these folders (dotfiles and editor temporaries
/// skipped), plus the single files after them.
const BUILTIN_DIRS: [&str; 8] = [
    "claims",
    "suites",
    "configs",
    "oracles",
    "data",
    "models",
    "tests/fixtures/quant-ref",
    "tests/fixtures/metrics",
];
const BUILTIN_FILES: [&str; 7] = [
    "groundtruth.toml",
    "docs/oracle-format.md",
    "ci/oracle_common.py",
    "ci/oracle_llamacpp.py",
    "ci/oracle_transformers.py",
    "ci/requirements-oracle-llamacpp.txt",
    "ci/requirements-oracle-transformers.txt",
];

/// Writes `$OUT_DIR/builtin_files.rs`: `FILES`, a sorted table of (path relative to the
/// project root, `include_bytes!` of the file), and `HASH`, an FNV-1a digest of the
/// table (the name of the folder the files are unpacked into). Rewritten only when it
/// changes, so an unchanged tree does not recompile the crate.
fn builtin_table() {
    let root = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let mut files: Vec<String> = Vec::new();
    for dir in BUILTIN_DIRS {
        if root.join(dir).is_dir() {
            println!("cargo:rerun-if-changed={dir}");
            collect(&root, std::path::Path::new(dir), &mut files);
        }
    }
    for f in BUILTIN_FILES {
        println!("cargo:rerun-if-changed={f}");
        if root.join(f).is_file() {
            files.push(f.to_string());
        }
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut code = String::from("/// Project files built into the binary: (path relative to the project root, bytes).\npub static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let abs = root.join(f);
        let bytes = std::fs::read(&abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display()));
        fnv1a(&mut h, f.as_bytes(), &bytes);
        code.push_str(&format!(
            "    ({f:?}, include_bytes!({:?})),\n",
            abs.display().to_string()
        ));
    }
    code.push_str(&format!(
        "];\n/// FNV-1a of every path and its bytes.\npub const HASH: &str = \"{h:016x}\";\n"
    ));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_files.rs");
    if std::fs::read_to_string(&out).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(&out, code).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
}

/// Relative paths of the files under `root/dir`, recursively.
fn collect(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".tmp") {
            continue;
        }
        let rel = dir.join(&name);
        if e.path().is_dir() {
            collect(root, &rel, out);
        } else {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// FNV-1a over every file under `src/` (sorted paths and contents): caches of results
/// this code computed (trained checkpoints) are keyed by it, so a code change never
/// reuses numbers an older build produced.
fn source_hash() -> u64 {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
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
        fnv1a(&mut h, f.to_string_lossy().as_bytes(), &bytes);
    }
    h
}

/// Feeds a file's name, a NUL and its bytes into an FNV-1a state.
fn fnv1a(h: &mut u64, name: &[u8], bytes: &[u8]) {
    for b in name.iter().chain([0u8].iter()).chain(bytes.iter()) {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
}
