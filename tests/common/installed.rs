//! The `groundtruth` binary as a user runs it: in a folder of their own, with its own
//! cache folder and none of the variables a developer's shell might set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary run in `cwd` with its own cache folder and none of the variables a
/// developer's shell might set.
pub fn gt(cwd: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_groundtruth"));
    c.current_dir(cwd).args(args).env("XDG_CACHE_HOME", cache);
    for v in [
        "GROUNDTRUTH_OUT",
        "GROUNDTRUTH_PYTHON",
        "GROUNDTRUTH_GH",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "GITHUB_STEP_SUMMARY",
    ] {
        c.env_remove(v);
    }
    c
}

pub fn out(c: &mut Command) -> Output {
    c.output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 2 and exactly one line on stderr, which is returned.
pub fn one_line_error(o: &Output) -> String {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout {}\nstderr {err}",
        text(&o.stdout)
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(
        err.matches("os error").count(),
        err.contains("os error") as usize,
        "said twice: {err}"
    );
    err
}

/// Writes an executable shell script (a stand-in for a program on PATH).
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    let mut perm = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(path, perm).unwrap();
}

/// A claim registered to fail: `variant` of tiny-seeded drifts by less than 1e-9 nats.
pub fn planted_claim(id: &str, variant: &str) -> String {
    format!(
        "[[claim]]\nid = \"{id}\"\nkind = \"quant_drift\"\nstatement = \"planted: {variant} is as good as f32\"\n\
         subjects = {{ models = [\"tiny-seeded\"], variants = [\"{variant}\"] }}\n\
         bound = {{ statistic = \"kl_max\", op = \"<=\", value = 1e-9 }}\n\
         rationale = \"planted to fail\"\nregistered = \"2026-11-28\"\nbasis = \"prior\"\n"
    )
}

/// `groundtruth <verb> --model tiny-seeded --out OUT` (materialize a folder, export a
/// GGUF), which must succeed.
pub fn tiny(cwd: &Path, cache: &Path, verb: &str, out_path: &Path) {
    let o = out(&mut gt(
        cwd,
        cache,
        &[
            verb,
            "--model",
            "tiny-seeded",
            "--out",
            out_path.to_str().unwrap(),
        ],
    ));
    assert!(o.status.success(), "{verb}: {}", text(&o.stderr));
}
