//! Running the release binary on hostile input under a memory limit, and building the small
//! models those inputs are made from (`tests/hostile.rs`, `tests/hostile_props.rs`).

use candle_core::quantized::{gguf_file, QTensor};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The address-space limit (`ulimit -v`, KiB) every hostile input runs under: the bound the
/// README states. A run of the tiny model needs about 150 MB; the largest input groundtruth
/// reads whole (a report, at most 128 MiB) needs twice its size.
pub const MEMORY_LIMIT_KB: u64 = 512 * 1024;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_groundtruth")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `groundtruth --root ROOT ARGS…` under `ulimit -v` [`MEMORY_LIMIT_KB`] after the shell
/// commands `setup` (further limits, traps), with outputs of the run kept under `out`.
pub fn run_limited<S: AsRef<OsStr>>(root: &Path, out: &Path, setup: &str, args: &[S]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KB}; {setup} exec \"$0\" \"$@\""
        ))
        .arg(bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .env("GROUNDTRUTH_OUT", out)
        .output()
        .expect("run bash")
}

/// [`run_limited`] in the checkout (its claims, configs and oracles), outputs under `out`.
pub fn gt<S: AsRef<OsStr>>(out: &Path, args: &[S]) -> Output {
    run_limited(&repo(), out, "", args)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 2 (never a panic, an abort or the OOM killer), one short line on standard
/// error with no raw control bytes, naming each of `needles`.
pub fn assert_bad_input(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "status {:?}, stderr: {}",
        o.status,
        &err[..err.len().min(3000)]
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {}",
        &err[..err.len().min(3000)]
    );
    assert!(
        err.len() < 2000,
        "{} bytes of stderr: {}…",
        err.len(),
        &err[..300]
    );
    assert!(
        !err.trim_end().chars().any(|c| c.is_control()),
        "control characters in {err:?}"
    );
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
}

/// tiny-seeded as a Hugging Face folder at `dir/name`.
pub fn tiny_folder(dir: &Path, name: &str) -> PathBuf {
    write_tiny(dir, name, "materialize")
}

/// tiny-seeded exported as an f32 GGUF at `dir/name`.
pub fn tiny_gguf(dir: &Path, name: &str) -> PathBuf {
    write_tiny(dir, name, "export")
}

/// tiny-seeded written to `dir/name` by `command` (`materialize` or `export`).
fn write_tiny(dir: &Path, name: &str, command: &str) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new(bin())
        .arg("--root")
        .arg(repo())
        .args([command, "--model", "tiny-seeded", "--out"])
        .arg(&out)
        .env("GROUNDTRUTH_OUT", dir.join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

pub fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(path).unwrap();
    f(&mut b);
    std::fs::write(path, b).unwrap();
}

/// Rewrites a GGUF with candle's writer: metadata edited, tensors mapped.
pub fn rewrite(
    src: &Path,
    dst: &Path,
    meta: impl Fn(&str, &gguf_file::Value) -> gguf_file::Value,
    tensor: impl Fn(&str, QTensor) -> QTensor,
) {
    rewrite_with(
        src,
        dst,
        |m| m.iter_mut().for_each(|(k, v)| *v = meta(k, v)),
        tensor,
    )
}

/// A copy of `src` with metadata `key` set to `value` (added when absent).
pub fn with_meta(src: &Path, dst: &Path, key: &str, value: gguf_file::Value) {
    rewrite_with(
        src,
        dst,
        |m| {
            m.retain(|(k, _)| k != key);
            m.push((key.to_string(), value));
            m.sort_by(|a, b| a.0.cmp(&b.0));
        },
        |_, q| q,
    )
}

fn rewrite_with(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut Vec<(String, gguf_file::Value)>),
    tensor: impl Fn(&str, QTensor) -> QTensor,
) {
    let mut f = std::fs::File::open(src).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let mut metadata: Vec<(String, gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut metadata);
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    let tensors: Vec<(String, QTensor)> = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                tensor(
                    n,
                    content
                        .tensor(&mut f, n, &candle_core::Device::Cpu)
                        .unwrap(),
                ),
            )
        })
        .collect();
    let mut out = std::fs::File::create(dst).unwrap();
    let m: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut out, &m, &t).unwrap();
}
