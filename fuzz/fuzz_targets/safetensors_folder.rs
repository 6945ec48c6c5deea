//! A Hugging Face folder through what `groundtruth check`/`ppl` do with one. The input is
//! `config.json`, `model.safetensors` and `tokenizer.json` joined by the line `--8<--`
//! (`fuzz/seeds.sh` writes such inputs from a real folder).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const SEPARATOR: &[u8] = b"\n--8<--\n";

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() < 2 {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch().join("folder");
    std::fs::create_dir_all(&dir).expect("folder");
    let parts = split(data);
    for (i, name) in ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .enumerate()
    {
        std::fs::write(dir.join(name), parts.get(i).copied().unwrap_or_default())
            .expect("write input");
    }
    let _ = groundtruth::model::read_hf_metadata(&dir);
    let Ok(weights) = groundtruth::model::load_hf_folder(&dir) else {
        return;
    };
    let Ok(tokenizer) = groundtruth::tokenizer::HfTokenizer::from_folder(&dir) else {
        return;
    };
    if groundtruth::tokenizer::check_fits(&tokenizer, weights.config.vocab_size).is_err() {
        return;
    }
    common::run_once(&weights);
});
