//! `groundtruth oracle`: an oracle from an independent runtime in one command. Runs the
//! reference script of `ci/` (llama.cpp or transformers) in Python, after checking the
//! interpreter has the pinned packages of `ci/requirements-oracle-*.txt` (saying how to
//! install them when not), and validates what the script wrote against the oracle
//! contract before renaming it to `--out`: a broken oracle never lands there.

use super::commands::{given_file, model_path};
use super::OracleRuntime;
use crate::gguf_guard::GgmlType;
use crate::plan::EXIT_HOLDS;
use crate::project::{Project, DEFAULT_PROMPTS, EVAL_FILE};
use crate::subject::hub;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `groundtruth oracle` was asked for.
pub(super) struct Request<'a> {
    pub runtime: OracleRuntime,
    pub model: &'a str,
    pub prompts: Option<&'a Path>,
    pub out: &'a Path,
    pub model_id: Option<&'a str>,
    pub weights: Option<&'a str>,
    pub perplexity: bool,
    pub python: Option<&'a Path>,
}

impl OracleRuntime {
    /// `runtime.name` in the oracles its script writes.
    fn name(self) -> &'static str {
        match self {
            OracleRuntime::LlamaCpp => "llama.cpp",
            OracleRuntime::Transformers => "transformers",
        }
    }

    fn script(self) -> &'static str {
        match self {
            OracleRuntime::LlamaCpp => "ci/oracle_llamacpp.py",
            OracleRuntime::Transformers => "ci/oracle_transformers.py",
        }
    }

    fn requirements(self) -> &'static str {
        match self {
            OracleRuntime::LlamaCpp => "ci/requirements-oracle-llamacpp.txt",
            OracleRuntime::Transformers => "ci/requirements-oracle-transformers.txt",
        }
    }

    /// Environment the install command needs (llama-cpp-python builds from source).
    fn install_env(self) -> &'static str {
        match self {
            OracleRuntime::LlamaCpp => "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" ",
            OracleRuntime::Transformers => "",
        }
    }
}

/// The pinned `name==version` lines of a requirements file.
fn pins(file: &Path) -> Result<Vec<(String, String)>> {
    let text = crate::fsutil::read_text(file)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, version)) = line.split_once("==") else {
            bail!(
                "{}:{}: '{line}' is not pinned as name==version",
                file.display(),
                i + 1
            )
        };
        out.push((name.trim().to_string(), version.trim().to_string()));
    }
    Ok(out)
}

/// Which pinned packages the interpreter lacks (`None` installed) or has at another version.
fn installed(python: &Path, names: &[&str]) -> Result<Vec<Option<String>>> {
    const PROBE: &str = "import importlib.metadata as m, sys\nfor n in sys.argv[1:]:\n    try:\n        print(m.version(n))\n    except m.PackageNotFoundError:\n        print('-')\n";
    let out = Command::new(python)
        .arg("-c")
        .arg(PROBE)
        .args(names)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "{}: no such Python interpreter (pass --python PATH or set GROUNDTRUTH_PYTHON)",
                python.display()
            ),
            _ => anyhow::anyhow!("{}: {e}", python.display()),
        })?;
    if !out.status.success() {
        bail!(
            "{} could not list its packages ({}): {}",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let versions: Vec<Option<String>> = text
        .lines()
        .map(|l| Some(l.trim().to_string()).filter(|v| v != "-"))
        .collect();
    if versions.len() != names.len() {
        bail!(
            "{} answered the package probe with {} lines for {} packages",
            python.display(),
            versions.len(),
            names.len()
        );
    }
    Ok(versions)
}

/// Fails with the install command when a pinned package is missing; warns when one is
/// installed at another version (the oracle records the runtime's version either way).
fn check_packages(python: &Path, runtime: OracleRuntime, requirements: &Path) -> Result<()> {
    let pins = pins(requirements)?;
    let names: Vec<&str> = pins.iter().map(|(n, _)| n.as_str()).collect();
    let have = installed(python, &names)?;
    let missing: Vec<String> = pins
        .iter()
        .zip(&have)
        .filter(|(_, h)| h.is_none())
        .map(|((n, v), _)| format!("{n}=={v}"))
        .collect();
    if !missing.is_empty() {
        let lacks = match missing.len() == pins.len() {
            true => "none of them".to_string(),
            false => format!("only some of them (missing {})", missing.join(", ")),
        };
        bail!(
            "--runtime {} needs the Python packages {} and {} has {lacks}; install them with `{}{} -m pip install -r {}`, or pass --python (or set GROUNDTRUTH_PYTHON) to an interpreter that has them",
            runtime.name(),
            pins.iter().map(|(n, v)| format!("{n}=={v}")).collect::<Vec<_>>().join(", "),
            python.display(),
            runtime.install_env(),
            python.display(),
            requirements.display()
        );
    }
    for ((n, want), got) in pins.iter().zip(&have) {
        if let Some(got) = got.as_deref().filter(|g| g != want) {
            errln!("groundtruth: warning: {} has {n} {got}, not the pinned {want}: the oracle records the version it ran", python.display());
        }
    }
    Ok(())
}

/// ggml's lower-case name of a storage type, as `model.weights` records it.
fn weights_name(t: GgmlType) -> &'static str {
    match t {
        GgmlType::F32 => "f32",
        GgmlType::F16 => "f16",
        GgmlType::BF16 => "bf16",
        GgmlType::Q4_0 => "q4_0",
        GgmlType::Q4_1 => "q4_1",
        GgmlType::Q5_0 => "q5_0",
        GgmlType::Q5_1 => "q5_1",
        GgmlType::Q8_0 => "q8_0",
        GgmlType::Q8_1 => "q8_1",
        GgmlType::Q2K => "q2_k",
        GgmlType::Q3K => "q3_k",
        GgmlType::Q4K => "q4_k",
        GgmlType::Q5K => "q5_k",
        GgmlType::Q6K => "q6_k",
        GgmlType::Q8K => "q8_k",
    }
}

/// The storage type holding most of a GGUF's weights (by element count).
fn dominant_type(gguf: &Path) -> Result<&'static str> {
    let summary = crate::gguf_guard::validate_gguf(gguf)?;
    let mut totals: Vec<(GgmlType, u64)> = Vec::new();
    for t in &summary.tensors {
        let n: u64 = t.dims.iter().product();
        match totals.iter_mut().find(|(ty, _)| *ty == t.ggml_type) {
            Some((_, total)) => *total += n,
            None => totals.push((t.ggml_type, n)),
        }
    }
    let (ty, _) = totals
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .with_context(|| format!("{}: holds no tensors", gguf.display()))?;
    Ok(weights_name(ty))
}

/// `model.id` when not given: ORG/REPO of a hub reference, else the file or folder name.
fn default_model_id(reference: &str, local: &Path) -> String {
    match hub::parse(reference) {
        Ok(r) => r.repo,
        Err(_) => local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| local.display().to_string()),
    }
}

/// The file whose hash the oracle must record: the GGUF file itself for llama.cpp, the
/// folder's model.safetensors (every file of the folder present) for transformers.
fn weights_file(runtime: OracleRuntime, model: &Path) -> Result<PathBuf> {
    Ok(match runtime {
        OracleRuntime::LlamaCpp if model.is_file() => model.to_path_buf(),
        OracleRuntime::LlamaCpp => {
            bail!("{}: --runtime llama.cpp needs a GGUF file", model.display())
        }
        OracleRuntime::Transformers => {
            if let Some(f) = hub::FOLDER_FILES.iter().find(|f| !model.join(f).is_file()) {
                bail!("{}: --runtime transformers needs a Hugging Face folder with {}; {f} is missing", model.display(), hub::FOLDER_FILES.join(", "));
            }
            model.join("model.safetensors")
        }
    })
}

/// The Python to run: `--python`, else $GROUNDTRUTH_PYTHON, else python3.
fn python_of(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("GROUNDTRUTH_PYTHON")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| "python3".into())
}

/// Runs the reference script (`cmd`, writing `tmp`), checks what it wrote against the
/// contract, and moves it to `--out`; the caller removes `tmp` whatever happens.
fn run_script(
    cmd: &mut Command,
    python: &Path,
    req: &Request<'_>,
    tmp: &Path,
    weights_file: &Path,
    prompts: &Path,
) -> Result<crate::oracle::Oracle> {
    let status = cmd
        .status()
        .with_context(|| format!("{}: could not start", python.display()))?;
    if !status.success() {
        bail!(
            "{} {} failed ({status}); its messages are above",
            python.display(),
            req.runtime.script()
        );
    }
    let oracle = validate(tmp, req.runtime, weights_file, prompts).with_context(|| {
        format!(
            "{} wrote an oracle that is not usable",
            req.runtime.script()
        )
    })?;
    std::fs::rename(tmp, req.out).with_context(|| {
        format!(
            "{}: could not move the oracle into place",
            req.out.display()
        )
    })?;
    Ok(oracle)
}

pub(super) fn run(project: &Project, req: &Request<'_>) -> Result<u8> {
    let model = model_path(req.model)?;
    let weights_file = weights_file(req.runtime, &model)?;
    let prompts = req
        .prompts
        .map(Path::to_path_buf)
        .unwrap_or_else(|| project.path(DEFAULT_PROMPTS));
    given_file(
        &prompts,
        "prompts",
        "a prompt set in the format of configs/prompts.toml",
    )?;
    let python = python_of(req.python);
    check_packages(
        &python,
        req.runtime,
        &project.path(req.runtime.requirements()),
    )?;
    let mut cmd = Command::new(&python);
    cmd.arg(project.path(req.runtime.script()))
        .arg("--model")
        .arg(&model)
        .arg("--prompts")
        .arg(&prompts);
    cmd.arg("--model-id").arg(
        req.model_id
            .map(str::to_string)
            .unwrap_or_else(|| default_model_id(req.model, &model)),
    );
    match req.perplexity {
        true => cmd.arg("--eval").arg(project.path(EVAL_FILE)),
        false => cmd.arg("--no-perplexity"),
    };
    if req.runtime == OracleRuntime::LlamaCpp {
        let w = match req.weights {
            Some(w) => w.to_string(),
            None => dominant_type(&model)?.to_string(),
        };
        cmd.arg("--weights").arg(w);
    }
    let tmp = temp_beside(req.out);
    cmd.arg("--out").arg(&tmp);
    let result = run_script(&mut cmd, &python, req, &tmp, &weights_file, &prompts);
    let _ = std::fs::remove_file(&tmp);
    let oracle = result?;
    outln!(
        "wrote {}: {} cases, runtime {} ({}), model.sha256 {}{}",
        req.out.display(),
        oracle.cases.len(),
        oracle.runtime.name,
        oracle.runtime.version,
        oracle.model.sha256,
        oracle
            .perplexity
            .as_ref()
            .map(|p| format!(", perplexity {:.4}", p.ppl))
            .unwrap_or_default()
    );
    Ok(EXIT_HOLDS)
}

/// A temporary name in the folder of `out` (so the final rename cannot cross devices).
fn temp_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oracle.json".into());
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(".{name}.tmp.{}", std::process::id()))
}

/// The contract (the strict reader), plus what this run asked for: the runtime, the very
/// weights file, and exactly the prompt set's prompts in order.
fn validate(
    file: &Path,
    runtime: OracleRuntime,
    weights: &Path,
    prompts: &Path,
) -> Result<crate::oracle::Oracle> {
    let oracle = crate::oracle::read(file)?;
    if oracle.runtime.name != runtime.name() {
        bail!(
            "runtime.name is '{}', not '{}'",
            oracle.runtime.name,
            runtime.name()
        );
    }
    let sha = crate::fsutil::sha256_file(weights)?;
    if oracle.model.sha256 != sha {
        bail!(
            "model.sha256 is {}, but {} has {sha}",
            oracle.model.sha256,
            weights.display()
        );
    }
    let want: Vec<(String, String)> = crate::prompts::load(prompts)?
        .into_iter()
        .map(|p| (p.id, p.text))
        .collect();
    let got: Vec<(String, String)> = oracle
        .cases
        .iter()
        .map(|c| (c.id.clone(), c.prompt.clone()))
        .collect();
    if got != want {
        bail!(
            "its cases are not the prompts of {} (ids and texts, in order)",
            prompts.display()
        );
    }
    Ok(oracle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_read_as_pins() {
        let p = Project::from_manifest();
        for rt in [OracleRuntime::LlamaCpp, OracleRuntime::Transformers] {
            let pins = pins(&p.path(rt.requirements())).unwrap();
            assert!(
                !pins.is_empty() && pins.iter().all(|(n, v)| !n.is_empty() && !v.is_empty()),
                "{pins:?}"
            );
            assert!(p.path(rt.script()).is_file());
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.txt");
        std::fs::write(&f, "# c\nnumpy>=2\n").unwrap();
        assert!(pins(&f).unwrap_err().to_string().contains("r.txt:2"));
    }

    #[test]
    fn the_default_model_id_is_the_hub_repo_or_the_file_name() {
        assert_eq!(
            default_model_id("hf://org/m@v1/x.gguf", Path::new("/c/x.gguf")),
            "org/m"
        );
        assert_eq!(
            default_model_id("/tmp/my.gguf", Path::new("/tmp/my.gguf")),
            "my.gguf"
        );
    }
}
