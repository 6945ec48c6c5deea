//! A GGUF file through everything `groundtruth check`/`ppl`/`inspect` do with one: the
//! bounded check, candle's reader, the config and tokenizer built from the metadata, the
//! model, one forward pass, and the second reader (gguf-rs) of `inspect`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch().join("model.gguf");
    std::fs::write(&path, data).expect("write input");
    if groundtruth::gguf_guard::validate_gguf(&path).is_err() {
        return;
    }
    let _ = groundtruth::gguf_guard::cross_check_with_gguf_rs(&path);
    let Ok((weights, info)) = groundtruth::model::load_gguf(&path) else {
        return;
    };
    let metadata = info.metadata.clone().into_iter().collect();
    let Ok(tokenizer) = groundtruth::tokenizer::GgufTokenizer::from_metadata(&metadata) else {
        return;
    };
    if groundtruth::tokenizer::check_fits(&tokenizer, weights.config.vocab_size).is_err() {
        return;
    }
    common::run_once(&weights);
});
