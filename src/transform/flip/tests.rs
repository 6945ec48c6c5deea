//! Properties of the flip engine on real files: same seed, same bytes; every listed flip
//! changes exactly its bit and nothing else; the damaged file still parses and loads;
//! tensors no flip lands in keep their bytes.

use super::*;
use crate::model::{load_gguf, load_hf_folder, save_hf_folder, Weights};
use crate::stored::StoredFile;
use crate::transform::{convert, export_gguf, Source};
use crate::variant::DType;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// 256 wide so the K-quants take every matrix (no Q8_0 fallback).
fn tiny() -> Weights {
    crate::testutil::tiny_weights(256, 256, 4, 2, 5)
}

struct Fixture {
    _dir: tempfile::TempDir,
    files: Vec<PathBuf>,
}

/// An f32 safetensors folder and GGUFs of a legacy, a K-quant and an f16 type.
fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let w = tiny();
        let mut files = vec![];
        save_hf_folder(&dir.path().join("st"), &w, None, &BTreeMap::new()).unwrap();
        files.push(dir.path().join("st/model.safetensors"));
        for d in [DType::Q4_0, DType::Q4_1, DType::Q4K, DType::Q6K, DType::F16] {
            let (q, _) = convert(&w, d).unwrap();
            let p = dir.path().join(format!("{}.gguf", d.name()));
            export_gguf(&p, "tiny", &q, Source::default(), None).unwrap();
            files.push(p);
        }
        Fixture { _dir: dir, files }
    })
}

fn corrupt_copy(
    path: &std::path::Path,
    class: BitClass,
    region: Region,
    n: u64,
    seed: u64,
) -> Result<(StoredFile, FlipList), FlipError> {
    let mut f = StoredFile::read(path).unwrap();
    let list = corrupt_file(
        &mut f,
        &Target::class(class, region),
        Severity::Count(n),
        seed,
    )?;
    Ok((f, list))
}

/// (offset, bit) of every differing bit between two equal-length buffers.
fn differing_bits(a: &[u8], b: &[u8]) -> BTreeSet<(u64, u32)> {
    assert_eq!(a.len(), b.len());
    let mut out = BTreeSet::new();
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = x ^ y;
        for bit in 0..8 {
            if d >> bit & 1 == 1 {
                out.insert((i as u64, bit));
            }
        }
    }
    out
}

fn classes_for(path: &std::path::Path) -> Vec<(BitClass, Region)> {
    let quantized =
        path.extension().is_none_or(|e| e != "safetensors") && !path.ends_with("f16.gguf");
    let mut v = vec![
        (BitClass::Any, Region::Weights),
        (BitClass::ExponentMsb, Region::Weights),
        (BitClass::MantissaLow, Region::Embedding),
        (BitClass::Sign, Region::Norm),
    ];
    if quantized {
        v.extend([
            (BitClass::Exponent, Region::Scales),
            (BitClass::Any, Region::Packed),
            (BitClass::Any, Region::Scales),
        ]);
    }
    if path.ends_with("q4_1.gguf") || path.ends_with("q4_k.gguf") {
        v.push((BitClass::Mantissa, Region::Mins));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn each_listed_flip_is_exactly_one_bit_of_the_file(file_ix in 0usize..6, class_ix in 0usize..8, n in 1u64..40, seed in any::<u64>()) {
        let path = &fixture().files[file_ix];
        let classes = classes_for(path);
        let (class, region) = classes[class_ix % classes.len()];
        let original = std::fs::read(path).unwrap();
        let (damaged, list) = corrupt_copy(path, class, region, n, seed).unwrap();
        prop_assert_eq!(list.flips.len() as u64, n);
        let listed: BTreeSet<(u64, u32)> = list.flips.iter().map(|f| (f.file_offset.unwrap(), f.bit % 8)).collect();
        prop_assert_eq!(listed.len() as u64, n, "two flips on one bit");
        prop_assert_eq!(differing_bits(&original, &damaged.bytes), listed);
        // The header is untouched and every flip lies in its tensor's data.
        prop_assert_eq!(&original[..damaged.data_start], &damaged.bytes[..damaged.data_start]);
        for f in &list.flips {
            let t = damaged.tensors.iter().find(|t| t.name == f.tensor).unwrap();
            prop_assert!(t.range.contains(&(f.file_offset.unwrap() as usize)));
            prop_assert_eq!(f.file_offset.unwrap(), t.range.start as u64 + f.byte);
            prop_assert!(f.old.to_bits() != f.new.to_bits() || (f.old.is_nan() && f.new.is_nan()));
        }
        // Same seed, same bytes; another seed, other bits.
        let (again, list2) = corrupt_copy(path, class, region, n, seed).unwrap();
        prop_assert_eq!(&again.bytes, &damaged.bytes);
        prop_assert_eq!(&list2, &list);
    }
}

#[test]
fn the_damaged_file_parses_and_loads_with_other_tensors_untouched() {
    for path in &fixture().files {
        for (class, region) in classes_for(path) {
            let (damaged, list) = corrupt_copy(path, class, region, 5, 11).unwrap();
            let out = fixture()._dir.path().join(format!(
                "damaged-{}",
                path.file_name().unwrap().to_string_lossy()
            ));
            std::fs::write(&out, &damaged.bytes).unwrap();
            let reread = StoredFile::read(&out).unwrap();
            let clean = StoredFile::read(path).unwrap();
            assert_eq!(
                reread.tensors,
                clean.tensors,
                "{} {class} {region}: the tensor table changed",
                path.display()
            );
            let touched: BTreeSet<&str> = list.flips.iter().map(|f| f.tensor.as_str()).collect();
            for t in &clean.tensors {
                let same = clean.bytes[t.range.clone()] == reread.bytes[t.range.clone()];
                assert_eq!(
                    same,
                    !touched.contains(t.name.as_str()),
                    "{}: {} {class} {region}",
                    path.display(),
                    t.name
                );
            }
            match path.extension().and_then(|e| e.to_str()) {
                Some("gguf") => drop(load_gguf(&out).unwrap()),
                _ => {
                    let folder = fixture()
                        ._dir
                        .path()
                        .join(format!("damaged-folder-{class}-{region}"));
                    std::fs::create_dir_all(&folder).unwrap();
                    std::fs::copy(
                        path.parent().unwrap().join("config.json"),
                        folder.join("config.json"),
                    )
                    .unwrap();
                    std::fs::write(folder.join("model.safetensors"), &damaged.bytes).unwrap();
                    drop(load_hf_folder(&folder).unwrap());
                }
            }
        }
    }
}

#[test]
fn flips_in_quantized_blocks_act_on_the_stored_scale() {
    // Flip the exponent MSB of one Q4_0 scale: the 32 weights of that block, and no
    // other, are multiplied by exactly 2^16 when the model dequantizes them.
    let (q, _) = convert(&tiny(), DType::Q4_0).unwrap();
    let (damaged, list) = corrupt_weights(
        &q,
        &Target::class(BitClass::ExponentMsb, Region::Scales),
        Severity::Count(1),
        3,
    )
    .unwrap();
    let f = &list.flips[0];
    assert_eq!(
        (f.field.as_str(), f.bit, f.new / f.old),
        ("d", 14, 65536.0),
        "{f:?}"
    );
    let dequantized = |w: &Weights| {
        w.get(&f.tensor)
            .unwrap()
            .to_f32_tensor(&candle_core::Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let (before, after) = (dequantized(&q), dequantized(&damaged));
    let block = f.block.unwrap() as usize;
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        let want = if i / 32 == block { a * 65536.0 } else { *a };
        assert_eq!(*b, want, "element {i}");
    }
    assert!(
        matches!(
            damaged.get(&f.tensor).unwrap(),
            crate::model::Weight::Quant(_)
        ),
        "the damaged tensor stays quantized"
    );
}

#[test]
fn corrupted_weights_match_the_corrupted_file() {
    // The in-memory path and the file path flip the same bits of a safetensors model
    // (both enumerate tensors in name order there).
    let path = &fixture().files[0];
    let w = load_hf_folder(path.parent().unwrap()).unwrap();
    let target = Target::class(BitClass::Any, Region::Weights);
    let (_, from_weights) = corrupt_weights(&w, &target, Severity::Rate(1_000_000), 9).unwrap();
    let mut f = StoredFile::read(path).unwrap();
    let from_file = corrupt_file(&mut f, &target, Severity::Rate(1_000_000), 9).unwrap();
    let strip = |l: &FlipList| {
        l.flips
            .iter()
            .map(|f| {
                (
                    f.tensor.clone(),
                    f.element,
                    f.bit,
                    f.old.to_bits(),
                    f.new.to_bits(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&from_weights), strip(&from_file));
    assert_eq!(
        from_file.flips.len() as u64,
        Severity::Rate(1_000_000).flips(from_file.weights).unwrap()
    );
}

#[test]
fn write_corrupted_copies_a_folder_and_puts_the_list_beside_the_file() {
    let src = fixture().files[0].parent().unwrap().to_path_buf();
    std::fs::write(src.join("tokenizer.json"), "{}").unwrap();
    let out = fixture()._dir.path().join("out-folder");
    let (list, damaged) = write_corrupted(
        &src,
        &out,
        &Target::class(BitClass::ExponentMsb, Region::Weights),
        Severity::Count(2),
        1,
    )
    .unwrap();
    assert_eq!(damaged, out.join("model.safetensors"));
    assert_eq!(std::fs::read(out.join("tokenizer.json")).unwrap(), b"{}");
    let written: FlipList =
        serde_json::from_slice(&std::fs::read(flips_path(&damaged)).unwrap()).unwrap();
    assert_eq!(written, list);
    assert_eq!(
        list.output.unwrap().sha256,
        crate::fsutil::sha256_file(&damaged).unwrap()
    );
    assert!(matches!(
        write_corrupted(
            &src,
            &src,
            &Target::class(BitClass::Sign, Region::Weights),
            Severity::Count(1),
            1
        ),
        Err(CorruptFileError::SameFile { .. })
    ));
}
