//! `groundtruth check` on good checkpoints and on planted faults: it holds on the oracle's
//! own file and on a faithful requantization, falsifies real damage, and rejects broken
//! or hostile files with exit 2 and one line naming the file.

mod common;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use common::hostile::{edit, repo, rewrite, stderr, tiny_folder};
use common::smollm2;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn check(model: &Path, oracle: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_groundtruth"))
        .args(["--root", env!("CARGO_MANIFEST_DIR"), "check", "--json", "--model"])
        .arg(model)
        .arg("--oracle")
        .arg(oracle)
        .output()
        .unwrap()
}

/// Exit code and verdict; the claims that did not pass are printed, so a failed
/// assertion shows why.
fn verdict(o: &Output) -> (Option<i32>, String) {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    for c in v["claims"].as_array().into_iter().flatten().filter(|c| c["outcome"] != "pass" && c["outcome"] != "skip") {
        eprintln!("{c}");
    }
    if !o.status.success() {
        eprintln!("{}", stderr(o));
    }
    (o.status.code(), v["verdict"].as_str().unwrap_or("").to_string())
}

/// Byte range of a tensor's data in a safetensors file.
fn safetensors_range(path: &Path, name: &str) -> (usize, usize) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let offs = &header[name]["data_offsets"];
    (8 + n + offs[0].as_u64().unwrap() as usize, 8 + n + offs[1].as_u64().unwrap() as usize)
}

#[test]
fn tiny_checkpoint_holds_and_planted_faults_are_falsified_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let oracle = repo().join("oracles/tiny-seeded/f32.json");
    let good = tiny_folder(dir.path(), "tiny");
    assert_eq!(verdict(&check(&good, &oracle)), (Some(0), "pass".into()));

    // One flipped exponent bit (bit 30 of an f32) in a layer matrix.
    let flipped = tiny_folder(dir.path(), "flip");
    let st = flipped.join("model.safetensors");
    let (start, _) = safetensors_range(&st, "model.layers.0.mlp.down_proj.weight");
    edit(&st, |b| b[start + 4 * 100 + 3] ^= 0x40);
    assert_eq!(verdict(&check(&flipped, &oracle)), (Some(1), "falsified".into()));

    // A zeroed final norm weight. (Swapped embedding rows or a wrong norm epsilon are no
    // planted faults for this random model: its argmax just repeats the input token through
    // the tied embedding, which a consistent row swap or a rescaling leaves unchanged.)
    let norm = tiny_folder(dir.path(), "norm");
    let st = norm.join("model.safetensors");
    let (start, end) = safetensors_range(&st, "model.norm.weight");
    edit(&st, |b| b[start..end].fill(0));
    assert_eq!(verdict(&check(&norm, &oracle)), (Some(1), "falsified".into()));

    // A truncated weights file: bad input, one line naming it.
    let cut = tiny_folder(dir.path(), "cut");
    edit(&cut.join("model.safetensors"), |b| b.truncate(b.len() / 2));
    let o = check(&cut, &oracle);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("model.safetensors") && err.trim().lines().count() == 1, "{err}");

    // A broken oracle and a missing model are bad input too.
    let bad_oracle = dir.path().join("bad.json");
    std::fs::write(&bad_oracle, "{\"format\": \"groundtruth-oracle/1\"}").unwrap();
    let o = check(&good, &bad_oracle);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.json"), "{}", stderr(&o));
    let o = check(&dir.path().join("nope.gguf"), &oracle);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.gguf"), "{}", stderr(&o));
}

/// Exchanges the `n` bytes at `x` with the `n` bytes at `y` (the ranges must not overlap).
fn swap_ranges(b: &mut [u8], x: usize, y: usize, n: usize) {
    let (lo, hi) = (x.min(y), x.max(y));
    assert!(lo + n <= hi, "overlapping ranges");
    let (head, tail) = b.split_at_mut(hi);
    head[lo..lo + n].swap_with_slice(&mut tail[..n]);
}

fn tensor_range(path: &Path, name: &str) -> (usize, usize) {
    let s = groundtruth::gguf_check::check_gguf(path).unwrap();
    let t = s.tensors.iter().find(|t| t.name == name).unwrap();
    ((s.data_start + t.offset) as usize, t.n_bytes as usize)
}

#[test]
fn smollm2_holds_on_its_file_and_a_requantization_and_falsifies_damage() {
    let Some(model) = smollm2() else { return };
    let oracle = repo().join("oracles/smollm2-135m-instruct/q4_1.json");
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let p = dir.path().join(name);
        std::fs::copy(&model, &p).unwrap();
        p
    };
    assert_eq!(verdict(&check(&model, &oracle)), (Some(0), "pass".into()), "the oracle's own file");

    let q8 = dir.path().join("q8_0.gguf");
    rewrite(&model, &q8, |_, v| v.clone(), |_, q| {
        let shape = q.shape().dims().to_vec();
        if shape.len() == 2 && shape[1] % 32 == 0 {
            QTensor::quantize(&q.dequantize(&candle_core::Device::Cpu).unwrap(), GgmlDType::Q8_0).unwrap()
        } else {
            q
        }
    });
    assert_eq!(verdict(&check(&q8, &oracle)), (Some(0), "pass".into()), "a faithful Q8_0 requantization");

    // Q4_1 blocks start with an f16 scale: bit 6 of its high byte is the exponent's top bit.
    let flip = copy("flip.gguf");
    let (start, _) = tensor_range(&flip, "blk.0.ffn_down.weight");
    edit(&flip, |b| b[start + 1] ^= 0x40);
    assert_eq!(verdict(&check(&flip, &oracle)), (Some(1), "falsified".into()), "flipped exponent bit");

    let zero = copy("zero.gguf");
    let (start, n) = tensor_range(&zero, "blk.0.ffn_down.weight");
    edit(&zero, |b| b[start..start + n].fill(0));
    assert_eq!(verdict(&check(&zero, &oracle)), (Some(1), "falsified".into()), "zeroed tensor");

    // A converter that mixes up SwiGLU's gate and up projections: same shape and type, so
    // only the numbers can tell.
    let swapped = copy("gate-up.gguf");
    let (gate, n) = tensor_range(&swapped, "blk.7.ffn_gate.weight");
    let (up, m) = tensor_range(&swapped, "blk.7.ffn_up.weight");
    assert_eq!(n, m);
    edit(&swapped, |b| swap_ranges(b, gate, up, n));
    assert_eq!(verdict(&check(&swapped, &oracle)), (Some(1), "falsified".into()), "swapped gate and up tensors");

    // Rows of token_embd (49152 rows, whatever its block type): "\n" (198) and "." (30).
    let swap = copy("swap.gguf");
    let (start, n) = tensor_range(&swap, "token_embd.weight");
    assert_eq!(n % 49152, 0);
    let row = n / 49152;
    edit(&swap, |b| swap_ranges(b, start + 198 * row, start + 30 * row, row));
    assert_eq!(verdict(&check(&swap, &oracle)), (Some(1), "falsified".into()), "swapped embedding rows");

    let rope = dir.path().join("rope.gguf");
    rewrite(&model, &rope, |k, v| if k == "llama.rope.freq_base" { gguf_file::Value::F32(10000.0) } else { v.clone() }, |_, q| q);
    assert_eq!(verdict(&check(&rope, &oracle)), (Some(1), "falsified".into()), "wrong RoPE base");

    let eps = dir.path().join("eps.gguf");
    rewrite(&model, &eps, |k, v| if k == "llama.attention.layer_norm_rms_epsilon" { gguf_file::Value::F32(0.1) } else { v.clone() }, |_, q| q);
    assert_eq!(verdict(&check(&eps, &oracle)), (Some(1), "falsified".into()), "wrong norm epsilon");

    let norm = copy("norm.gguf");
    let (start, n) = tensor_range(&norm, "output_norm.weight");
    edit(&norm, |b| {
        for v in b[start..start + n].chunks_mut(4) {
            let x = f32::from_le_bytes(v.try_into().unwrap()) * 3.0;
            v.copy_from_slice(&x.to_le_bytes());
        }
    });
    assert_eq!(verdict(&check(&norm, &oracle)), (Some(1), "falsified".into()), "changed norm weight");

    let cut = copy("cut.gguf");
    edit(&cut, |b| b.truncate(b.len() - 1000));
    let o = check(&cut, &oracle);
    assert_eq!(o.status.code(), Some(2), "truncated");
    assert!(stderr(&o).contains("cut.gguf") && stderr(&o).trim().lines().count() == 1, "{}", stderr(&o));

    let hostile = copy("hostile.gguf");
    edit(&hostile, |b| b[8..16].copy_from_slice(&u64::MAX.to_le_bytes()));
    let o = check(&hostile, &oracle);
    assert_eq!(o.status.code(), Some(2), "hostile tensor count");
    assert!(stderr(&o).contains("hostile.gguf"), "{}", stderr(&o));
}
