//! What `bench eval` and `bench train` compare against. A ratio is printed only against a
//! reference runtime measured in the same run (`--with-llama-cpp PYTHON`,
//! `--with-pytorch PYTHON`, driving the scripts in `ci/`); without one, the stored figure
//! is shown with the machine and date it comes from, and no ratio: speeds from another
//! machine, load or day are not comparable.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// A reference speed measured elsewhere, shown for orientation only.
pub(super) struct Stored {
    /// Tokens per second.
    pub(super) tokens_per_s: f64,
    /// What was measured, with which runtime.
    pub(super) what: &'static str,
    /// Where and when.
    pub(super) provenance: &'static str,
}

const LLAMA_CPP_MACHINE: &str =
    "measured 2026-11-22 on the 2-core machine this project was first developed on";

/// llama.cpp (llama-cpp-python 0.3.36, 2 threads) prompt processing on SmolLM2 Q4_1.
pub(super) const LLAMA_CPP_PREFILL: Stored = Stored {
    tokens_per_s: 220.0,
    what: "llama.cpp prefill",
    provenance: LLAMA_CPP_MACHINE,
};
/// llama.cpp (llama-cpp-python 0.3.36, 2 threads) single-token decoding on SmolLM2 Q4_1.
pub(super) const LLAMA_CPP_DECODE: Stored = Stored {
    tokens_per_s: 100.0,
    what: "llama.cpp decoding",
    provenance: LLAMA_CPP_MACHINE,
};

const PYTORCH_MACHINE: &str = "from the issue that set the training target (another machine, 2 threads; date not recorded, before 2026-11-22)";

/// PyTorch's training throughput (transformers' LlamaForCausalLM, f32, AdamW, batch 16 ×
/// 128) stored for a rung; its tiny_1m had hidden 56 (ours: 64).
pub(super) fn pytorch_stored(rung: &str) -> Option<Stored> {
    let tokens_per_s = match rung {
        "tiny_1m" => 7_300.0,
        "small_8m" => 2_400.0,
        _ => return None,
    };
    Some(Stored {
        tokens_per_s,
        what: "PyTorch training",
        provenance: PYTORCH_MACHINE,
    })
}

/// A reference measured in this run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Live {
    /// Tokens per second.
    pub(super) tokens_per_s: f64,
    /// The runtime and its version, as the script reports them.
    pub(super) runtime: String,
}

/// How our figure reads against its reference: a ratio against a live one, the stored
/// figure and where it comes from otherwise.
pub(super) fn compare(
    ours: f64,
    live: Option<&Live>,
    stored: Option<&Stored>,
    flag: &str,
) -> String {
    match (live, stored) {
        (Some(l), _) => format!(
            "= {:.2}× {} measured in this run ({:.1} tokens/s)",
            ours / l.tokens_per_s,
            l.runtime,
            l.tokens_per_s
        ),
        (None, Some(s)) => format!(
            "(no ratio: {} stored at {:.0} tokens/s, {}; {flag} PYTHON measures it alongside)",
            s.what, s.tokens_per_s, s.provenance
        ),
        (None, None) => format!("(no reference: {flag} PYTHON measures one alongside)"),
    }
}

/// A warning when the machine is busier than the threads measured: spinning thread pools
/// (llama.cpp's, OpenMP's in PyTorch) lose far more to contention than rayon's, so a ratio
/// taken then says more about the load than about the runtimes.
pub(super) fn contention_warning(load_1min: &str, threads: usize) -> Option<String> {
    let load: f64 = load_1min.parse().ok()?;
    (load > threads as f64).then(|| {
        format!("warning: 1-minute load average {load_1min} exceeds the {threads} threads measured: the reference's spinning thread pool loses far more to contention than ours; rerun on a quiet machine (or with 1 thread) before quoting a ratio")
    })
}

/// The JSON a reference script prints on its last stdout line.
pub(super) fn run_script(
    python: &Path,
    script: &Path,
    args: &[String],
) -> Result<serde_json::Value> {
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| {
            format!(
                "{}: cannot run it to measure the reference",
                python.display()
            )
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail = stderr.lines().last().unwrap_or("no message");
        bail!(
            "{} {}: exit {}: {tail}",
            python.display(),
            script.display(),
            out.status.code().map_or("signal".into(), |c| c.to_string())
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    crate::input::parse_json(line.as_bytes(), script).with_context(|| {
        format!(
            "{}: last output line is not JSON: '{}'",
            script.display(),
            crate::excerpt::excerpt(line)
        )
    })
}

/// A positive finite tokens/s figure `key` from a script's JSON, with the runtime it names.
pub(super) fn live(doc: &serde_json::Value, key: &str, script: &Path) -> Result<Live> {
    let v = doc
        .get(key)
        .and_then(serde_json::Value::as_f64)
        .filter(|v| v.is_finite() && *v > 0.0);
    let tokens_per_s = v.with_context(|| {
        format!(
            "{}: field '{key}' is missing or not a positive number",
            script.display()
        )
    })?;
    let runtime = doc
        .get("runtime")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("the reference")
        .to_string();
    Ok(Live {
        tokens_per_s,
        runtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_only_against_a_live_reference() {
        let l = Live {
            tokens_per_s: 100.0,
            runtime: "llama.cpp".into(),
        };
        let s = &LLAMA_CPP_DECODE;
        assert!(compare(320.0, Some(&l), Some(s), "--with-llama-cpp")
            .starts_with("= 3.20× llama.cpp measured in this run"));
        let stored = compare(320.0, None, Some(s), "--with-llama-cpp");
        assert!(
            !stored.contains('×') && stored.contains("2026-11-22") && stored.contains("no ratio"),
            "{stored}"
        );
        assert!(!compare(1.0, None, None, "--with-pytorch").contains('×'));
    }

    #[test]
    fn contention_is_flagged_when_load_exceeds_threads() {
        assert!(contention_warning("3.5", 2)
            .is_some_and(|w| w.contains("3.5") && w.contains("2 threads")));
        assert_eq!(contention_warning("1.9", 2), None);
        assert_eq!(contention_warning("?", 2), None);
    }

    #[test]
    fn script_output_must_hold_a_positive_figure() {
        let doc: serde_json::Value =
            serde_json::json!({"decode": 75.5, "runtime": "llama-cpp-python 0.3.36", "bad": -1.0});
        let p = Path::new("ci/x.py");
        assert_eq!(
            live(&doc, "decode", p).unwrap(),
            Live {
                tokens_per_s: 75.5,
                runtime: "llama-cpp-python 0.3.36".into()
            }
        );
        for key in ["bad", "missing", "runtime"] {
            assert!(live(&doc, key, p).unwrap_err().to_string().contains(key));
        }
    }

    #[test]
    fn a_failing_script_is_an_error_naming_it() {
        let e =
            run_script(Path::new("/nonexistent/python"), Path::new("ci/x.py"), &[]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/python"), "{e}");
        let e =
            run_script(Path::new("sh"), Path::new("-c"), &["echo not json".into()]).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = run_script(
            Path::new("sh"),
            Path::new("-c"),
            &["echo oops >&2; exit 3".into()],
        )
        .unwrap_err();
        assert!(e.to_string().contains("exit 3: oops"), "{e}");
        let ok = run_script(
            Path::new("sh"),
            Path::new("-c"),
            &["echo noise; echo '{\"a\": 1}'".into()],
        )
        .unwrap();
        assert_eq!(ok["a"], 1);
    }
}
