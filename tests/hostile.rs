//! Hostile input everywhere: every case of issue 17 run on the release binary under
//! `ulimit -v` (`common::hostile::MEMORY_LIMIT_KB`, the README's memory bound). Each ends in
//! exit 2 with one short line naming the file (or, for sizes the file merely declares, in
//! a normal run whose memory follows the sequences actually run), never in a panic, an
//! abort, the OOM killer, a raw-byte "line" or partial output.

mod common;

use candle_core::quantized::gguf_file::Value;
use common::hostile::{
    assert_bad_input, bin, edit, gt, repo, rewrite, run_limited, stderr, tiny_folder, tiny_gguf,
    with_meta,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `dir/config.json` with `field` set to the raw JSON `value`.
fn set_config(dir: &Path, field: &str, value: &str) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v[field] = serde_json::from_str(value).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// The committed tiny-seeded oracle, edited, written to `dir/name`.
fn oracle_with(dir: &Path, name: &str, f: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("oracles/tiny-seeded/f32.json")).unwrap(),
    )
    .unwrap();
    f(&mut v);
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    p
}

fn ppl_args(model: &Path) -> Vec<String> {
    vec![
        "ppl".into(),
        "--model".into(),
        model.display().to_string(),
        "--ctx".into(),
        "64".into(),
        "--chunks".into(),
        "1".into(),
    ]
}

#[test]
fn a_declared_context_length_does_not_size_memory() {
    let d = scratch();
    let out = d.path().join("out");
    // 10M positions: within the limit, so the run must work; a table for them would take
    // 10M × 32 frequencies × 2 × 8 bytes = 5 GB.
    let folder = tiny_folder(d.path(), "ctx");
    set_config(&folder, "max_position_embeddings", "10000000");
    let o = gt(&out, &ppl_args(&folder));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let gguf = tiny_gguf(d.path(), "tiny.gguf");
    let long = d.path().join("long.gguf");
    with_meta(&gguf, &long, "llama.context_length", Value::U32(10_000_000));
    let o = gt(&out, &ppl_args(&long));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Beyond any real model: refused, naming the field.
    set_config(&folder, "max_position_embeddings", "1000000000000000000");
    assert_bad_input(
        &gt(&out, &ppl_args(&folder)),
        &["config.json", "max_position_embeddings"],
    );
    with_meta(
        &gguf,
        &long,
        "llama.context_length",
        Value::U32(100_000_000),
    );
    assert_bad_input(
        &gt(&out, &ppl_args(&long)),
        &["long.gguf", "max_position_embeddings"],
    );
}

#[test]
fn declared_layers_are_checked_against_the_tensors_before_any_allocation() {
    let d = scratch();
    let out = d.path().join("out");
    let folder = tiny_folder(d.path(), "layers");
    for (layers, needle) in [
        ("1000", "model.layers.2."),
        ("1000000", "num_hidden_layers"),
        ("1000000000", "num_hidden_layers"),
    ] {
        set_config(&folder, "num_hidden_layers", layers);
        assert_bad_input(&gt(&out, &ppl_args(&folder)), &["layers", needle]);
    }
    let gguf = tiny_gguf(d.path(), "tiny.gguf");
    let deep = d.path().join("deep.gguf");
    for (blocks, needle) in [(1000, "model.layers.2."), (1 << 31, "num_hidden_layers")] {
        with_meta(&gguf, &deep, "llama.block_count", Value::U32(blocks));
        assert_bad_input(&gt(&out, &ppl_args(&deep)), &["deep.gguf", needle]);
    }
}

#[test]
fn an_oracle_costs_a_small_multiple_of_its_size() {
    let d = scratch();
    let folder = tiny_folder(d.path(), "tiny");
    let big = oracle_with(d.path(), "big.json", |v| {
        v["cases"][0]["prompt"] = "x".repeat(20 << 20).into()
    });
    let o = gt(
        &d.path().join("out"),
        &[
            "check".as_ref(),
            "--model".as_ref(),
            folder.as_os_str(),
            "--oracle".as_ref(),
            big.as_os_str(),
        ],
    );
    assert_bad_input(&o, &["big.json", "cases[0].prompt"]);
}

#[test]
fn special_files_are_read_within_bounds() {
    let d = scratch();
    let out = d.path().join("out");
    let folder = tiny_folder(d.path(), "tiny");
    let zero = Path::new("/dev/zero");
    let check = |model: &Path, oracle: &Path| {
        gt(
            &out,
            &[
                "check".as_ref(),
                "--model".as_ref(),
                model.as_os_str(),
                "--oracle".as_ref(),
                oracle.as_os_str(),
            ],
        )
    };
    assert_bad_input(&check(&folder, zero), &["/dev/zero", "limit"]);
    let mut text = ppl_args(&folder);
    text.extend(["--text".into(), "/dev/zero".into()]);
    assert_bad_input(&gt(&out, &text), &["/dev/zero", "limit"]);
    assert_bad_input(
        &gt(&out, &["ticket", "--report", "/dev/zero"]),
        &["/dev/zero", "limit"],
    );
    let mut base = ppl_args(&folder);
    base.extend(["--base".into(), "/dev/zero".into()]);
    assert_bad_input(&gt(&out, &base), &["/dev/zero", "limit"]);
    assert_bad_input(
        &gt(&out, &["inspect", "/dev/zero"]),
        &["/dev/zero", "not a regular file"],
    );
    // Links to /dev/zero where a model, a weights file and a claims file belong.
    let link = d.path().join("model.gguf");
    std::os::unix::fs::symlink(zero, &link).unwrap();
    assert_bad_input(
        &gt(&out, &ppl_args(&link)),
        &["model.gguf", "not a regular file"],
    );
    assert_bad_input(
        &check(&link, &repo().join("oracles/tiny-seeded/f32.json")),
        &["model.gguf", "not a regular file"],
    );
    std::fs::remove_file(folder.join("model.safetensors")).unwrap();
    std::os::unix::fs::symlink(zero, folder.join("model.safetensors")).unwrap();
    assert_bad_input(
        &gt(&out, &ppl_args(&folder)),
        &["model.safetensors", "not a regular file"],
    );
    let root = d.path().join("project");
    std::fs::create_dir_all(root.join("claims")).unwrap();
    std::os::unix::fs::symlink(zero, root.join("claims/zero.toml")).unwrap();
    assert_bad_input(
        &run_limited(&root, &out, "", &["claims", "list"]),
        &["zero.toml", "limit"],
    );
    // A FIFO nobody writes to is a FIFO, not an empty file to wait on.
    let fifo = d.path().join("fifo.gguf");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    assert_bad_input(
        &gt(&out, &["inspect".as_ref(), fifo.as_os_str()]),
        &["fifo.gguf", "not a regular file"],
    );
}

/// The byte offset of a GGUF's first tensor info (its name length) and first metadata key.
fn header_offsets(path: &Path) -> (u64, u64) {
    let s = groundtruth::gguf_guard::validate_gguf(path).unwrap();
    (s.tensors[0].header_offset, s.metadata[0].header_offset)
}

#[test]
fn error_messages_quote_file_content_briefly() {
    let d = scratch();
    let out = d.path().join("out");
    let gguf = tiny_gguf(d.path(), "tiny.gguf");
    let (tensor_at, key_at) = header_offsets(&gguf);
    let len = std::fs::metadata(&gguf).unwrap().len();
    // A name length grown to swallow most of the file (tensor data, NULs included), then
    // a key length of half the file.
    for (name, at, grown) in [
        ("name.gguf", tensor_at, len - tensor_at - 200),
        ("key.gguf", key_at, len / 2),
    ] {
        let p = d.path().join(name);
        std::fs::copy(&gguf, &p).unwrap();
        edit(&p, |b| {
            b[at as usize..at as usize + 8].copy_from_slice(&grown.to_le_bytes())
        });
        assert_bad_input(&gt(&out, &["inspect".as_ref(), p.as_os_str()]), &[name]);
        assert_bad_input(&gt(&out, &ppl_args(&p)), &[name]);
    }
    let folder = tiny_folder(d.path(), "tiny");
    let junk: String = "\u{1b}[31m\0".repeat(1 << 18);
    set_config(
        &folder,
        "model_type",
        &serde_json::to_string(&junk).unwrap(),
    );
    assert_bad_input(
        &gt(&out, &ppl_args(&folder)),
        &["config.json", "model_type"],
    );
}

#[test]
fn a_closed_stdout_is_quiet_and_a_full_disk_is_one_line() {
    let d = scratch();
    let gguf = tiny_gguf(d.path(), "tiny.gguf");
    for args in [
        vec!["claims".to_string(), "list".into()],
        vec![
            "inspect".into(),
            "--json".into(),
            gguf.display().to_string(),
        ],
    ] {
        // The reading end is closed before the program starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(bin())
            .arg("--root")
            .arg(repo())
            .args(&args)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(141),
            "{args:?}: {:?} {}",
            o.status,
            stderr(&o)
        );
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(bin())
        .arg("--root")
        .arg(repo())
        .arg("inspect")
        .arg(&gguf)
        .stdout(full)
        .output()
        .unwrap();
    assert_bad_input(&o, &["write standard output", "No space left"]);
}

#[test]
fn json_with_trailing_content_is_refused() {
    let d = scratch();
    let out = d.path().join("out");
    let folder = tiny_folder(d.path(), "tiny");
    let oracle = d.path().join("o.json");
    let good = std::fs::read_to_string(repo().join("oracles/tiny-seeded/f32.json")).unwrap();
    for tail in ["\n{\"format\": \"groundtruth-oracle/1\"}\n", "\ngarbage\n"] {
        std::fs::write(&oracle, format!("{good}{tail}")).unwrap();
        let o = gt(
            &out,
            &[
                "check".as_ref(),
                "--model".as_ref(),
                folder.as_os_str(),
                "--oracle".as_ref(),
                oracle.as_os_str(),
            ],
        );
        assert_bad_input(&o, &["o.json", "trailing content"]);
        let mut base = ppl_args(&folder);
        base.extend(["--base".into(), oracle.display().to_string()]);
        assert_bad_input(&gt(&out, &base), &["o.json", "trailing content"]);
    }
    let report = d.path().join("report.json");
    let rep = serde_json::to_string(&groundtruth::plan::report("hostile", Vec::new(), 0)).unwrap();
    std::fs::write(&report, &rep).unwrap();
    let o = gt(
        &out,
        &["ticket".as_ref(), "--report".as_ref(), report.as_os_str()],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "the report itself is good: {}",
        stderr(&o)
    );
    std::fs::write(&report, format!("{rep}\n{{}}")).unwrap();
    assert_bad_input(
        &gt(
            &out,
            &["ticket".as_ref(), "--report".as_ref(), report.as_os_str()],
        ),
        &["report.json", "trailing content"],
    );
}

/// Names in `dir` that are temporaries of the harness's writers (`.NAME.tmp.PID.N`).
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp.") || n.contains(".old."))
        .collect()
}

#[test]
fn outputs_are_atomic_and_stale_temporaries_are_removed() {
    let d = scratch();
    let out = d.path().join("out");
    let gguf = tiny_gguf(d.path(), "tiny.gguf");
    let dest = d.path().join("q");
    std::fs::create_dir_all(&dest).unwrap();
    let quantize = |setup: &str, to: &Path| {
        run_limited(
            &repo(),
            &out,
            setup,
            &[
                "quantize".as_ref(),
                "--model".as_ref(),
                gguf.as_os_str(),
                "--to".as_ref(),
                "q8_0".as_ref(),
                "--out".as_ref(),
                to.as_os_str(),
            ],
        )
    };
    // Killed mid-write (SIGXFSZ at 16 KiB): the temporary stays, the file does not appear.
    let o = quantize("ulimit -f 16;", &dest.join("x.gguf"));
    assert_eq!(
        o.status.code(),
        None,
        "killed by a signal: {:?} {}",
        o.status,
        stderr(&o)
    );
    assert_eq!(temporaries(&dest).len(), 1, "{:?}", temporaries(&dest));
    assert!(!dest.join("x.gguf").exists());
    // A temporary whose writer is alive (this test) is left alone.
    let live = dest.join(format!(".x.gguf.tmp.{}.0", std::process::id()));
    std::fs::write(&live, b"in progress").unwrap();
    let o = quantize("", &dest.join("x.gguf"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(dest.join("x.gguf").is_file());
    assert_eq!(
        temporaries(&dest),
        vec![live.file_name().unwrap().to_string_lossy().into_owned()]
    );
    // A write that fails (EFBIG: the signal ignored) leaves nothing, not even the folders it
    // would have created.
    let o = quantize(
        "trap '' XFSZ; ulimit -f 16;",
        &d.path().join("new/sub/x.gguf"),
    );
    assert_bad_input(&o, &["x.gguf"]);
    assert!(!d.path().join("new").exists());
    let export = run_limited(
        &repo(),
        &out,
        "trap '' XFSZ; ulimit -f 16;",
        &[
            "export".as_ref(),
            "--model".as_ref(),
            gguf.as_os_str(),
            "--to".as_ref(),
            "safetensors".as_ref(),
            "--out".as_ref(),
            d.path().join("hf/folder").as_os_str(),
        ],
    );
    assert_bad_input(&export, &["model.safetensors"]);
    assert!(
        !d.path().join("hf").exists(),
        "a failed export leaves no folder"
    );
    assert!(
        temporaries(d.path()).is_empty(),
        "{:?}",
        temporaries(d.path())
    );
    // A folder export replaces an older export whole, and refuses a folder holding
    // anything else rather than deleting it.
    let folder = d.path().join("folder");
    let export_to = |to: &Path| {
        run_limited(
            &repo(),
            &out,
            "",
            &[
                "export".as_ref(),
                "--model".as_ref(),
                gguf.as_os_str(),
                "--to".as_ref(),
                "safetensors".as_ref(),
                "--out".as_ref(),
                to.as_os_str(),
            ],
        )
    };
    for _ in 0..2 {
        let o = export_to(&folder);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    std::fs::write(folder.join("notes.txt"), b"mine").unwrap();
    assert_bad_input(&export_to(&folder), &["folder", "notes.txt", "refusing"]);
    assert_eq!(std::fs::read(folder.join("notes.txt")).unwrap(), b"mine");
    assert!(
        temporaries(d.path()).is_empty(),
        "{:?}",
        temporaries(d.path())
    );
}

#[test]
fn an_oracle_that_does_not_fit_the_model_is_one_line_before_any_model_work() {
    let d = scratch();
    let out = d.path().join("out");
    let folder = tiny_folder(d.path(), "tiny");
    // (file name, how the oracle is spoiled, what the one-line error must say)
    type Spoil = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "oov.json",
            Box::new(|v| {
                v["cases"][0]["tokens"][0] = 256.into();
                v["cases"][0]["top_logprobs"][0][0][0] = 256.into();
            }),
            "outside the model's 256-token vocabulary",
        ),
        (
            "prompt-oov.json",
            Box::new(|v| v["cases"][1]["prompt_tokens"][0] = 4_000_000_000u64.into()),
            "cases[1].prompt_tokens[0]",
        ),
        (
            "ours.json",
            Box::new(|v| v["runtime"]["name"] = "groundtruth".into()),
            "runtime.name",
        ),
        (
            "q9.json",
            Box::new(|v| v["model"]["weights"] = "q9_9".into()),
            "model.weights",
        ),
        (
            "empty-id.json",
            Box::new(|v| v["cases"][0]["id"] = "".into()),
            "cases[0].id",
        ),
        (
            "long.json",
            Box::new(|v| v["decoding"]["max_new_tokens"] = 1_000_000_000_000u64.into()),
            "context",
        ),
    ];
    for (name, f, needle) in cases {
        let oracle = oracle_with(d.path(), name, f);
        let o = gt(
            &out,
            &[
                "check".as_ref(),
                "--model".as_ref(),
                folder.as_os_str(),
                "--oracle".as_ref(),
                oracle.as_os_str(),
            ],
        );
        assert_bad_input(&o, &[name, needle]);
        assert!(
            o.stdout.is_empty(),
            "no verdict table for bad input: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

#[test]
fn sizes_and_ids_that_contradict_the_file_are_refused() {
    let d = scratch();
    let out = d.path().join("out");
    let gguf = tiny_gguf(d.path(), "tiny.gguf");
    // A token list longer than the embedding: a tokenizer that can produce an id the
    // model lacks is refused by the commands that tokenize with it.
    let extra = d.path().join("extra.gguf");
    let grow = |v: &Value, last: Value| match v {
        Value::Array(a) => Value::Array(a.iter().cloned().chain([last]).collect()),
        other => other.clone(),
    };
    rewrite(
        &gguf,
        &extra,
        |k, v| match k {
            "tokenizer.ggml.tokens" => grow(v, Value::String("<extra>".into())),
            "tokenizer.ggml.token_type" => grow(v, Value::I32(1)),
            _ => v.clone(),
        },
        |_, q| q,
    );
    assert_bad_input(&gt(&out, &ppl_args(&extra)), &["extra.gguf", "257"]);
    let oracle = repo().join("oracles/tiny-seeded/f32.json");
    let check = [
        "check".as_ref(),
        "--model".as_ref(),
        extra.as_os_str(),
        "--oracle".as_ref(),
        oracle.as_os_str(),
    ];
    assert_bad_input(&gt(&out, &check), &["extra.gguf", "257"]);
    let small = d.path().join("vocab.gguf");
    with_meta(&gguf, &small, "llama.vocab_size", Value::U32(10));
    assert_bad_input(
        &gt(&out, &ppl_args(&small)),
        &["vocab.gguf", "llama.vocab_size"],
    );
    with_meta(
        &gguf,
        &small,
        "tokenizer.ggml.eos_token_id",
        Value::U64(1 << 33),
    );
    assert_bad_input(
        &gt(&out, &ppl_args(&small)),
        &["vocab.gguf", "eos_token_id"],
    );

    let folder = tiny_folder(d.path(), "eos");
    set_config(&folder, "eos_token_id", "[1, 2, 1000000000]");
    assert_bad_input(
        &gt(&out, &ppl_args(&folder)),
        &["config.json", "eos_token_id", "1000000000"],
    );

    let folder = tiny_folder(d.path(), "tok");
    let tok = folder.join("tokenizer.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&tok).unwrap()).unwrap();
    v["model"]["vocab"]["!"] = 1_000_000_000.into();
    std::fs::write(&tok, serde_json::to_string(&v).unwrap()).unwrap();
    assert_bad_input(&gt(&out, &ppl_args(&folder)), &["tok", "1000000001"]);

    // The same tensor key twice in a safetensors header (the entries are identical, so a
    // reader keeping either would load the same model: still a malformed file).
    let folder = tiny_folder(d.path(), "dup");
    let st = folder.join("model.safetensors");
    edit(&st, |b| {
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8(b[8..8 + n].to_vec()).unwrap();
        let start = header.find("\"model.norm.weight\"").unwrap();
        let end = start + header[start..].find('}').unwrap() + 1;
        let trimmed = header.trim_end();
        let doubled = format!(
            "{},{}}}",
            &trimmed[..trimmed.len() - 1],
            &header[start..end]
        );
        let padded = format!("{doubled:<width$}", width = doubled.len().div_ceil(8) * 8);
        let mut out = (padded.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(padded.as_bytes());
        out.extend_from_slice(&b[8 + n..]);
        *b = out;
    });
    assert_bad_input(
        &gt(&out, &ppl_args(&folder)),
        &["model.safetensors", "duplicate key 'model.norm.weight'"],
    );

    let tiny = tiny_folder(d.path(), "tiny");
    let mut zero = ppl_args(&tiny);
    zero[6] = "0".into();
    assert_bad_input(&gt(&out, &zero), &["chunks 0"]);
}
