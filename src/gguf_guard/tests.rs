//! `validate_gguf` on a small file written by candle, with planted faults, random mutations
//! and truncations; and the real model against candle and gguf-rs when it is present.

use super::*;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use proptest::prelude::*;
use std::sync::OnceLock;

/// The small valid file's bytes and its summary, written once per test binary.
fn small() -> &'static (Vec<u8>, GgufSummary) {
    static SMALL: OnceLock<(Vec<u8>, GgufSummary)> = OnceLock::new();
    SMALL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.gguf");
        write_small(&path, &[]);
        let bytes = std::fs::read(&path).unwrap();
        let summary = validate_gguf(&path).unwrap();
        (bytes, summary)
    })
}

/// Two tensors (f32 3×5, q8_0 2×64) and metadata of most value types, plus `extra`.
fn write_small(path: &Path, extra: &[(&str, gguf_file::Value)]) {
    use gguf_file::Value as V;
    let dev = Device::Cpu;
    let a = Tensor::arange(0f32, 15., &dev)
        .unwrap()
        .reshape((3, 5))
        .unwrap();
    let b = (Tensor::arange(0f32, 128., &dev)
        .unwrap()
        .reshape((2, 64))
        .unwrap()
        * 0.01)
        .unwrap();
    let qa = QTensor::quantize(&a, GgmlDType::F32).unwrap();
    let qb = QTensor::quantize(&b, GgmlDType::Q8_0).unwrap();
    let mut md: Vec<(&str, V)> = vec![
        ("general.architecture", V::String("llama".into())),
        ("general.alignment", V::U32(32)),
        (
            "test.tokens",
            V::Array(vec![
                V::String("a".into()),
                V::String("Ġb".into()),
                V::String("<|im_start|>".into()),
            ]),
        ),
        ("test.ints", V::Array(vec![V::I32(-1), V::I32(7)])),
        ("test.floats", V::Array(vec![V::F32(0.1), V::F32(-2.5e-7)])),
        ("test.k1", V::U32(1)),
        ("test.k2", V::U32(2)),
        ("test.f32", V::F32(0.1)),
        ("test.f64", V::F64(2.5e-300)),
        ("test.flag", V::Bool(true)),
        ("test.u64", V::U64(1 << 40)),
        ("test.i64", V::I64(-5)),
        ("test.u8", V::U8(200)),
        ("test.i16", V::I16(-300)),
    ];
    md.extend(extra.iter().cloned());
    let md_refs: Vec<(&str, &V)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md_refs, &[("a.weight", &qa), ("b.weight", &qb)]).unwrap();
}

fn entry<'a>(s: &'a GgufSummary, key: &str) -> &'a MetaEntry {
    s.metadata.iter().find(|e| e.key == key).unwrap()
}

/// Where the value of a metadata entry starts (after key length, key and value type).
fn value_at(s: &GgufSummary, key: &str) -> usize {
    (entry(s, key).header_offset + 8 + key.len() as u64 + 4) as usize
}

/// Field offsets inside a tensor info: (n_dims, first dim, type, offset).
fn tensor_fields(s: &GgufSummary, i: usize) -> (usize, usize, usize, usize) {
    let t = &s.tensors[i];
    let nd = (t.header_offset + 8 + t.name.len() as u64) as usize;
    let ty = nd + 4 + 8 * t.dims.len();
    (nd, nd + 4, ty, ty + 4)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Runs `validate_gguf` on `bytes` in a temporary file.
fn check_bytes(bytes: &[u8]) -> (Result<GgufSummary, GgufError>, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mutant.gguf");
    std::fs::write(&path, bytes).unwrap();
    (validate_gguf(&path), dir, path)
}

fn fault_of(bytes: &[u8]) -> (Fault, String) {
    let (res, _dir, path) = check_bytes(bytes);
    let err = res.expect_err("planted fault must be rejected");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&path.display().to_string()),
        "message must name the file: {msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
    (err.fault().cloned().expect("a format fault, not I/O"), msg)
}

#[test]
fn small_file_passes_and_is_summarized() {
    let (bytes, s) = small();
    assert_eq!(
        (s.version, s.alignment, s.file_size),
        (2, 32, bytes.len() as u64)
    );
    assert_eq!(s.metadata.len(), 14);
    assert_eq!(
        s.get("general.architecture"),
        Some(&MetaValue::Str("llama".into()))
    );
    assert_eq!(s.get("test.u8"), Some(&MetaValue::Uint(ValueKind::U8, 200)));
    assert!(matches!(
        s.get("test.tokens"),
        Some(MetaValue::Array {
            elem: ValueKind::String,
            len: 3,
            ..
        })
    ));
    let names: Vec<_> = s
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.ggml_type, t.dims.clone(), t.n_bytes))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a.weight", GgmlType::F32, vec![5, 3], 60),
            ("b.weight", GgmlType::Q8_0, vec![64, 2], 136)
        ]
    );
    assert_eq!(s.data_start % 32, 0);
}

#[test]
fn small_file_agrees_with_candle_and_gguf_rs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.gguf");
    std::fs::write(&path, &small().0).unwrap();
    cross_check_with_gguf_rs(&path).unwrap();
    let s = validate_gguf(&path).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    assert_eq!(content.tensor_data_offset, s.data_start);
    for t in &s.tensors {
        let info = &content.tensor_infos[&t.name];
        let candle_dims: Vec<u64> = info.shape.dims().iter().rev().map(|&d| d as u64).collect();
        assert_eq!((candle_dims, info.offset), (t.dims.clone(), t.offset));
    }
}

#[test]
fn gguf_rs_disagreement_is_reported() {
    // gguf-rs cannot read arrays of arrays; candle and this parser can.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.gguf");
    let nested =
        gguf_file::Value::Array(vec![gguf_file::Value::Array(vec![gguf_file::Value::U8(1)])]);
    write_small(&path, &[("test.nested", nested)]);
    assert!(validate_gguf(&path).is_ok());
    let err = cross_check_with_gguf_rs(&path).unwrap_err().to_string();
    assert!(err.contains("gguf-rs"), "{err}");
}

#[test]
fn deep_nesting_is_rejected() {
    let mut v = gguf_file::Value::Array(vec![gguf_file::Value::U8(1)]);
    for _ in 0..70 {
        v = gguf_file::Value::Array(vec![v]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.gguf");
    write_small(&path, &[("test.deep", v)]);
    let err = validate_gguf(&path).unwrap_err();
    assert!(matches!(err.fault(), Some(Fault::TooDeep { .. })), "{err}");
}

#[test]
fn planted_faults_are_rejected() {
    let (orig, s) = small();
    let (_, _, b_ty, b_off) = tensor_fields(s, 1);
    let (a_nd, a_dim0, _, _) = tensor_fields(s, 0);
    let (_, b_dim0, _, _) = tensor_fields(s, 1);
    type Patch = Box<dyn Fn(&mut Vec<u8>)>;
    type Case = (&'static str, Patch, fn(&Fault) -> bool);
    let cases: Vec<Case> = vec![
        (
            "wrong magic",
            Box::new(|b| b[..4].copy_from_slice(b"GGUX")),
            |f| matches!(f, Fault::BadMagic { .. }),
        ),
        ("version 99", Box::new(|b| put_u32(b, 4, 99)), |f| {
            *f == Fault::UnsupportedVersion(99)
        }),
        (
            "tensor count u64::MAX",
            Box::new(|b| put_u64(b, 8, u64::MAX)),
            |f| {
                matches!(
                    f,
                    Fault::CountTooLarge {
                        what: "tensor",
                        count: u64::MAX,
                        ..
                    }
                )
            },
        ),
        (
            "metadata count 2^40",
            Box::new(|b| put_u64(b, 16, 1 << 40)),
            |f| {
                matches!(
                    f,
                    Fault::CountTooLarge {
                        what: "metadata",
                        count: 1099511627776,
                        ..
                    }
                )
            },
        ),
        (
            "string length 2^62",
            Box::new(move |b| put_u64(b, value_at(s, "general.architecture"), 1 << 62)),
            |f| {
                matches!(
                    f,
                    Fault::LengthTooLarge {
                        len: 4611686018427387904,
                        ..
                    }
                )
            },
        ),
        (
            "array of 2^50 elements",
            Box::new(move |b| put_u64(b, value_at(s, "test.tokens") + 4, 1 << 50)),
            |f| {
                matches!(
                    f,
                    Fault::ArrayTooLong {
                        count: 1125899906842624,
                        ..
                    }
                )
            },
        ),
        (
            "tensor offset past EOF",
            Box::new(move |b| put_u64(b, b_off, 1 << 20)),
            |f| matches!(f, Fault::PastEof { name, .. } if name == "b.weight"),
        ),
        (
            "unknown ggml type 77",
            Box::new(move |b| put_u32(b, b_ty, 77)),
            |f| matches!(f, Fault::UnknownGgmlType { ty: 77, .. }),
        ),
        (
            "Q8_1, which candle cannot read",
            Box::new(move |b| put_u32(b, b_ty, 9)),
            |f| matches!(f, Fault::UnreadableGgmlType { ty: 9, .. }),
        ),
        ("n_dims 9", Box::new(move |b| put_u32(b, a_nd, 9)), |f| {
            matches!(f, Fault::TooManyDims { n_dims: 9, .. })
        }),
        (
            "n_dims 0 (candle cannot read a scalar)",
            Box::new(move |b| put_u32(b, a_nd, 0)),
            |f| matches!(f, Fault::TooManyDims { n_dims: 0, .. }),
        ),
        (
            "misaligned offset",
            Box::new(move |b| put_u64(b, b_off, 64 + 4)),
            |f| matches!(f, Fault::Misaligned { offset: 68, .. }),
        ),
        (
            "overlapping tensors",
            Box::new(move |b| put_u64(b, b_off, 32)),
            |f| matches!(f, Fault::Overlap { .. }),
        ),
        (
            "duplicate tensor name",
            Box::new(move |b| b[s.tensors[1].header_offset as usize + 8] = b'a'),
            |f| matches!(f, Fault::DuplicateTensor(n) if n == "a.weight"),
        ),
        (
            "duplicate key",
            Box::new(move |b| b[entry(s, "test.k2").header_offset as usize + 8 + 6] = b'1'),
            |f| matches!(f, Fault::DuplicateKey(k) if k == "test.k1"),
        ),
        (
            "unknown value type",
            Box::new(move |b| put_u32(b, value_at(s, "test.flag") - 4, 13)),
            |f| matches!(f, Fault::UnknownValueType { ty: 13, .. }),
        ),
        (
            "alignment 0",
            Box::new(move |b| put_u32(b, value_at(s, "general.alignment"), 0)),
            |f| matches!(f, Fault::BadAlignment(_)),
        ),
        (
            "alignment 48",
            Box::new(move |b| put_u32(b, value_at(s, "general.alignment"), 48)),
            |f| matches!(f, Fault::BadAlignment(_)),
        ),
        (
            "bool 2",
            Box::new(move |b| b[value_at(s, "test.flag")] = 2),
            |f| matches!(f, Fault::BadBool { value: 2, .. }),
        ),
        (
            "element count overflow",
            Box::new(move |b| {
                put_u64(b, a_dim0, 1 << 40);
                put_u64(b, a_dim0 + 8, 1 << 40);
            }),
            |f| {
                matches!(
                    f,
                    Fault::ShapeOverflow {
                        what: "elements",
                        ..
                    }
                )
            },
        ),
        (
            "byte size overflow",
            // 3 × 2^61 elements fit in i64; 4 bytes each do not.
            Box::new(move |b| put_u64(b, a_dim0, 1 << 61)),
            |f| matches!(f, Fault::ShapeOverflow { what: "bytes", .. }),
        ),
        (
            // Regression (cargo fuzz, target gguf): candle made an unaligned slice of an
            // empty tensor's data (a debug-build panic, undefined behaviour otherwise).
            "empty tensor",
            Box::new(move |b| put_u64(b, a_dim0, 0)),
            |f| matches!(f, Fault::EmptyTensor { .. }),
        ),
        (
            "partial block",
            Box::new(move |b| put_u64(b, b_dim0, 48)),
            |f| {
                matches!(
                    f,
                    Fault::NotBlockMultiple {
                        dim0: 48,
                        block: 32,
                        ..
                    }
                )
            },
        ),
    ];
    for (label, patch, expected) in cases {
        let mut bytes = orig.clone();
        patch(&mut bytes);
        let (fault, msg) = fault_of(&bytes);
        assert!(expected(&fault), "{label}: unexpected fault: {msg}");
    }
}

#[test]
fn every_truncation_is_rejected() {
    let (orig, s) = small();
    // Cutting into the padding after the last tensor's data is harmless, so only cuts
    // before the end of that data must fail.
    let data_end = s
        .tensors
        .iter()
        .map(|t| s.data_start + t.offset + t.n_bytes)
        .max()
        .unwrap() as usize;
    for len in (0..s.header_end as usize)
        .step_by(7)
        .chain(s.header_end as usize..data_end)
    {
        let (fault, msg) = fault_of(&orig[..len]);
        let ok = if len < s.header_end as usize {
            matches!(
                fault,
                Fault::Truncated { .. }
                    | Fault::LengthTooLarge { .. }
                    | Fault::ArrayTooLong { .. }
                    | Fault::CountTooLarge { .. }
            )
        } else {
            matches!(fault, Fault::PastEof { .. })
        };
        assert!(ok, "truncated to {len}: {msg}");
    }
    let (res, _dir, _path) = check_bytes(&orig[..data_end]);
    assert!(
        res.is_ok(),
        "a file ending right after the last tensor is valid"
    );
}

/// If `validate_gguf` accepts a file, candle must read its header and every tensor, and
/// gguf-rs must not panic on it.
fn accepted_file_is_safe_for_candle(path: &Path, s: &GgufSummary) {
    let mut f = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut f).expect("candle must read a checked header");
    assert_eq!(content.tensor_data_offset, s.data_start);
    for t in &s.tensors {
        content
            .tensor(&mut f, &t.name, &Device::Cpu)
            .expect("candle must read a checked tensor");
    }
    let _ = cross_check_with_gguf_rs(path);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]
    #[test]
    fn mutations_never_panic(
        muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
        cut in proptest::option::weighted(0.2, any::<prop::sample::Index>()),
    ) {
        let (orig, _) = small();
        let mut bytes = orig.clone();
        for (i, v) in &muts {
            let at = i.index(bytes.len());
            bytes[at] = *v;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        let (res, _dir, path) = check_bytes(&bytes);
        match res {
            Ok(s) => accepted_file_is_safe_for_candle(&path, &s),
            Err(e) => prop_assert!(e.to_string().starts_with(&path.display().to_string())),
        }
    }
}

#[test]
fn block_table_matches_candle() {
    for code in 0..64 {
        let Some(t) = GgmlType::from_code(code) else {
            continue;
        };
        assert_eq!(t.code(), code);
        let c = match t {
            GgmlType::F32 => GgmlDType::F32,
            GgmlType::F16 => GgmlDType::F16,
            GgmlType::BF16 => GgmlDType::BF16,
            GgmlType::Q4_0 => GgmlDType::Q4_0,
            GgmlType::Q4_1 => GgmlDType::Q4_1,
            GgmlType::Q5_0 => GgmlDType::Q5_0,
            GgmlType::Q5_1 => GgmlDType::Q5_1,
            GgmlType::Q8_0 => GgmlDType::Q8_0,
            GgmlType::Q8_1 => GgmlDType::Q8_1,
            GgmlType::Q2K => GgmlDType::Q2K,
            GgmlType::Q3K => GgmlDType::Q3K,
            GgmlType::Q4K => GgmlDType::Q4K,
            GgmlType::Q5K => GgmlDType::Q5K,
            GgmlType::Q6K => GgmlDType::Q6K,
            GgmlType::Q8K => GgmlDType::Q8K,
        };
        assert_eq!(
            t.block(),
            (c.block_size() as u64, c.type_size() as u64),
            "{t:?}"
        );
    }
}

#[test]
fn real_model_passes_and_agrees_with_gguf_rs() {
    let Some(path) = crate::testutil::smollm2_gguf() else {
        return;
    };
    let s = validate_gguf(&path).unwrap();
    assert_eq!((s.version, s.tensors.len(), s.alignment), (3, 272, 32));
    assert!(matches!(
        s.get("tokenizer.ggml.tokens"),
        Some(MetaValue::Array { len: 49152, .. })
    ));
    cross_check_with_gguf_rs(&path).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    assert_eq!(content.tensor_data_offset, s.data_start);
    assert_eq!(content.metadata.len(), s.metadata.len());
}
