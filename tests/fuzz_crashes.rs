//! Every crash `cargo fuzz` found (README "Fuzzing"), kept as the exact input it wrote to
//! `fuzz/artifacts/<target>/`, under `tests/fixtures/fuzz/<target>/`, and run on the release
//! binary the way a user would meet it: each must end in exit 2 with one short line naming
//! the file, never a panic. A new crash is kept by copying its file there.

mod common;

use common::hostile::{assert_bad_input, gt, repo};
use std::path::{Path, PathBuf};

/// The kept crash inputs of one fuzz target, at least one (an empty folder is a lost file).
fn crashes(target: &str) -> Vec<PathBuf> {
    let dir = repo().join("tests/fixtures/fuzz").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no crash inputs in {}", dir.display());
    files
}

fn ppl(model: &Path) -> Vec<&std::ffi::OsStr> {
    ["ppl", "--ctx", "8", "--chunks", "1", "--model"]
        .iter()
        .map(|s| s.as_ref())
        .chain([model.as_os_str()])
        .collect()
}

#[test]
fn gguf_crash_inputs_are_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    for file in crashes("gguf") {
        let name = file.file_name().unwrap().to_str().unwrap();
        for args in [vec!["inspect".as_ref(), file.as_os_str()], ppl(&file)] {
            assert_bad_input(&gt(&d.path().join("out"), &args), &[name]);
        }
    }
    // crash-fba98d…: a tensor with a zero dimension; candle then made an unaligned slice of
    // its empty data (undefined behaviour). Before the fix `inspect` read it (exit 1).
    let o = gt(
        &d.path().join("out"),
        &[
            "inspect",
            "tests/fixtures/fuzz/gguf/crash-fba98d8bdf210b0c0e59bc56cc0a969f2ac9be21",
        ],
    );
    assert_bad_input(&o, &["zero dimension"]);
}

/// The parts of a `safetensors_folder` input (`config.json`, `model.safetensors` and
/// `tokenizer.json` joined by `\n--8<--\n`, as `fuzz/fuzz_targets/safetensors_folder.rs`
/// splits them) written as a folder.
fn unpack_folder(input: &[u8], dir: &Path) {
    const SEPARATOR: &[u8] = b"\n--8<--\n";
    std::fs::create_dir_all(dir).unwrap();
    let mut rest = input;
    for (i, name) in ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .enumerate()
    {
        let at = (i < 2)
            .then(|| rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR))
            .flatten();
        let (part, next) = match at {
            Some(at) => (&rest[..at], &rest[at + SEPARATOR.len()..]),
            None => (rest, &rest[rest.len()..]),
        };
        std::fs::write(dir.join(name), part).unwrap();
        rest = next;
    }
}

#[test]
fn safetensors_folder_crash_inputs_are_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    for (i, file) in crashes("safetensors_folder").iter().enumerate() {
        let folder = d.path().join(format!("folder{i}"));
        unpack_folder(&std::fs::read(file).unwrap(), &folder);
        // The folder's path names it; the file at fault is inside it.
        let o = gt(&d.path().join("out"), &ppl(&folder));
        assert_bad_input(&o, &[folder.to_str().unwrap()]);
    }
    // crash-0295f6…: a string in tokenizer.json's decoder that is not a code point made
    // tokenizers 0.23 panic (`expect("Helper")`) before the fix (exit 101).
    let folder = d.path().join("0295f6");
    unpack_folder(
        &std::fs::read(repo().join(
            "tests/fixtures/fuzz/safetensors_folder/crash-0295f623a20229e95392f4682d99e4a5d5f4edaa",
        ))
        .unwrap(),
        &folder,
    );
    assert_bad_input(
        &gt(&d.path().join("out"), &ppl(&folder)),
        &["tokenizer.json"],
    );
}
