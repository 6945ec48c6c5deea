//! The byte-level header walk behind [`super::validate_gguf`]: every length is checked against
//! the bytes left before anything is allocated or read.

use super::{
    invalid, Fault, GgmlType, GgufError, GgufSummary, MetaEntry, MetaValue, TensorEntry, ValueKind,
    DEFAULT_ALIGNMENT, FIXED_HEADER_BYTES, MAX_DEPTH, MIN_KV_BYTES, MIN_TENSOR_BYTES,
};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::digest::{Fnv, Scalar};
use crate::excerpt::excerpt;

/// A reader that knows its position and how many bytes the file has left.
pub(crate) struct Reader<R> {
    inner: R,
    pos: u64,
    size: u64,
    file: PathBuf,
}

/// How candle names a key or tensor (trailing NULs dropped, invalid UTF-8 replaced), so
/// duplicates are judged as candle's `HashMap` would see them.
fn candle_name(raw: &[u8]) -> String {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(inner: R, size: u64, file: &Path) -> Self {
        Self {
            inner,
            pos: 0,
            size,
            file: file.to_path_buf(),
        }
    }

    fn left(&self) -> u64 {
        self.size.saturating_sub(self.pos)
    }

    fn fail(&self, offset: u64, fault: Fault) -> GgufError {
        invalid(&self.file, offset, fault)
    }

    fn io(&self, source: std::io::Error) -> GgufError {
        GgufError::Io {
            file: self.file.clone(),
            source,
        }
    }

    fn take<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        if (N as u64) > self.left() {
            return Err(self.fail(
                self.pos,
                Fault::Truncated {
                    what: what(),
                    need: N as u64,
                    left: self.left(),
                },
            ));
        }
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(|e| self.io(e))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.take(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.take(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed byte string; the length is checked before the buffer exists.
    fn string(&mut self, what: impl Fn() -> String) -> Result<Vec<u8>, GgufError> {
        let at = self.pos;
        let len = self.u64(|| format!("length of {}", what()))?;
        if len > self.left() {
            return Err(self.fail(
                at,
                Fault::LengthTooLarge {
                    what: what(),
                    len,
                    left: self.left(),
                },
            ));
        }
        // len <= bytes left in the file, so this allocation is bounded by the file size.
        let mut buf = vec![0u8; len as usize];
        self.inner.read_exact(&mut buf).map_err(|e| self.io(e))?;
        self.pos += len;
        Ok(buf)
    }

    fn scalar(&mut self, kind: ValueKind, key: &str) -> Result<Scalar, GgufError> {
        let what = || format!("value of '{key}'");
        Ok(match kind {
            ValueKind::U8 => Scalar::Uint(u64::from(u8::from_le_bytes(self.take(what)?))),
            ValueKind::I8 => Scalar::Int(i64::from(i8::from_le_bytes(self.take(what)?))),
            ValueKind::U16 => Scalar::Uint(u64::from(u16::from_le_bytes(self.take(what)?))),
            ValueKind::I16 => Scalar::Int(i64::from(i16::from_le_bytes(self.take(what)?))),
            ValueKind::U32 => Scalar::Uint(u64::from(u32::from_le_bytes(self.take(what)?))),
            ValueKind::I32 => Scalar::Int(i64::from(i32::from_le_bytes(self.take(what)?))),
            ValueKind::U64 => Scalar::Uint(u64::from_le_bytes(self.take(what)?)),
            ValueKind::I64 => Scalar::Int(i64::from_le_bytes(self.take(what)?)),
            ValueKind::F32 => Scalar::F32(f32::from_le_bytes(self.take(what)?)),
            ValueKind::F64 => Scalar::F64(f64::from_le_bytes(self.take(what)?)),
            ValueKind::Bool => {
                let at = self.pos;
                match self.take::<1>(what)?[0] {
                    0 => Scalar::Bool(false),
                    1 => Scalar::Bool(true),
                    value => {
                        return Err(self.fail(
                            at,
                            Fault::BadBool {
                                what: format!("'{key}'"),
                                value,
                            },
                        ))
                    }
                }
            }
            ValueKind::String => {
                Scalar::Str(String::from_utf8_lossy(&self.string(what)?).into_owned())
            }
            // Arrays go through `array`; reaching here is a caller bug, reported as a fault
            // rather than a panic.
            ValueKind::Array => {
                return Err(self.fail(
                    self.pos,
                    Fault::UnknownValueType {
                        what: format!("'{key}'"),
                        ty: 9,
                    },
                ))
            }
        })
    }

    /// An array value: element type, count and digest; elements are hashed, not kept.
    fn array(&mut self, key: &str, depth: usize) -> Result<(ValueKind, u64, u64), GgufError> {
        if depth > MAX_DEPTH {
            return Err(self.fail(
                self.pos,
                Fault::TooDeep {
                    what: format!("'{key}'"),
                },
            ));
        }
        let at = self.pos;
        let ty = self.u32(|| format!("element type of array '{key}'"))?;
        let elem = ValueKind::from_code(ty).ok_or_else(|| {
            self.fail(
                at,
                Fault::UnknownValueType {
                    what: format!("array '{key}'"),
                    ty,
                },
            )
        })?;
        let len_at = self.pos;
        let count = self.u64(|| format!("length of array '{key}'"))?;
        let min_bytes = count.saturating_mul(elem.min_bytes());
        if min_bytes > self.left() {
            let what = format!("array '{key}' of {elem:?}");
            return Err(self.fail(
                len_at,
                Fault::ArrayTooLong {
                    what,
                    count,
                    min_bytes,
                    left: self.left(),
                },
            ));
        }
        let mut h = Fnv::new();
        for _ in 0..count {
            if elem == ValueKind::Array {
                let (e, n, d) = self.array(key, depth + 1)?;
                h.bytes(b"a");
                h.bytes(&(e as u32).to_le_bytes());
                h.bytes(&n.to_le_bytes());
                h.bytes(&d.to_le_bytes());
            } else {
                h.scalar(&self.scalar(elem, key)?);
            }
        }
        Ok((elem, count, h.finish()))
    }
}

fn meta_value(kind: ValueKind, s: Scalar) -> MetaValue {
    match s {
        Scalar::Uint(v) => MetaValue::Uint(kind, v),
        Scalar::Int(v) => MetaValue::Int(kind, v),
        Scalar::F32(v) => MetaValue::F32(v),
        Scalar::F64(v) => MetaValue::F64(v),
        Scalar::Bool(v) => MetaValue::Bool(v),
        Scalar::Str(v) => MetaValue::Str(v),
    }
}

/// `general.alignment` as candle reads it; anything candle would silently ignore (wrong
/// type, negative) or divide by (zero) is rejected so both readers agree on the data start.
fn alignment(metadata: &[MetaEntry]) -> Result<(u64, u64), (u64, Fault)> {
    let Some(e) = metadata.iter().find(|e| e.key == "general.alignment") else {
        return Ok((DEFAULT_ALIGNMENT, 0));
    };
    let bad = |msg: String| Err((e.header_offset, Fault::BadAlignment(msg)));
    let v = match &e.value {
        MetaValue::Uint(ValueKind::U8 | ValueKind::U16 | ValueKind::U32, v) => *v,
        MetaValue::Int(ValueKind::I8 | ValueKind::I16 | ValueKind::I32, v) if *v >= 0 => *v as u64,
        other => {
            return bad(format!(
                "is {}; candle honours only non-negative 8- to 32-bit integers",
                excerpt(format!("{other:?}"))
            ))
        }
    };
    if !v.is_power_of_two() {
        return bad(format!("{v} is not a power of two"));
    }
    Ok((v, e.header_offset))
}

struct RawTensor {
    name: String,
    ty: GgmlType,
    dims: Vec<u64>,
    offset: u64,
    at: u64,
}

/// Walks the whole header and validates the tensor data ranges against the file size.
pub(crate) fn header<R: Read>(r: &mut Reader<R>) -> Result<GgufSummary, GgufError> {
    let (version, tensor_count, kv_count) = counts(r)?;
    let file_size = r.size;
    // The counts were bounded by the file size, so these capacities are too.
    let metadata = metadata_entries(r, kv_count)?;
    let raw_tensors = tensor_infos(r, tensor_count)?;
    let header_end = r.pos;
    let (alignment, _) = alignment(&metadata).map_err(|(at, f)| r.fail(at, f))?;
    // header_end <= file size and alignment < 2^32, so this cannot overflow.
    let data_start = header_end.div_ceil(alignment) * alignment;
    let tensors = place_tensors(r, raw_tensors, data_start, alignment)?;
    check_overlaps(&tensors, data_start).map_err(|(at, f)| r.fail(at, f))?;
    Ok(GgufSummary {
        file_size,
        version,
        metadata,
        tensors,
        alignment,
        header_end,
        data_start,
    })
}

/// Magic, version, and the tensor and metadata counts, each count refused when the file is
/// too small to hold that many entries (so nothing is ever allocated from a hostile count).
fn counts<R: Read>(r: &mut Reader<R>) -> Result<(u32, u64, u64), GgufError> {
    let magic: [u8; 4] = r.take(|| "magic".into())?;
    if &magic != b"GGUF" {
        return Err(r.fail(0, Fault::BadMagic { found: magic }));
    }
    let version = r.u32(|| "version".into())?;
    if version != 2 && version != 3 {
        return Err(r.fail(4, Fault::UnsupportedVersion(version)));
    }
    let tensor_count = r.u64(|| "tensor count".into())?;
    let kv_count = r.u64(|| "metadata count".into())?;
    let file_size = r.size;
    let room = file_size.saturating_sub(FIXED_HEADER_BYTES);
    let too_many = |what, count, min_bytes| Fault::CountTooLarge {
        what,
        count,
        file_size,
        min_bytes,
    };
    if tensor_count > room / MIN_TENSOR_BYTES {
        return Err(r.fail(8, too_many("tensor", tensor_count, MIN_TENSOR_BYTES)));
    }
    if kv_count > room / MIN_KV_BYTES {
        return Err(r.fail(16, too_many("metadata", kv_count, MIN_KV_BYTES)));
    }
    // Both fit alone, so neither product overflows.
    if kv_count * MIN_KV_BYTES + tensor_count * MIN_TENSOR_BYTES > room {
        return Err(r.fail(
            8,
            too_many("metadata and tensor", kv_count + tensor_count, MIN_KV_BYTES),
        ));
    }

    Ok((version, tensor_count, kv_count))
}

/// The `kv_count` metadata entries: unique keys (as candle names them), known value types.
/// `kv_count` must come from [`counts`], which bounds it by the file size (it sizes a Vec).
fn metadata_entries<R: Read>(
    r: &mut Reader<R>,
    kv_count: u64,
) -> Result<Vec<MetaEntry>, GgufError> {
    let mut metadata = Vec::with_capacity(kv_count as usize);
    let mut keys = HashSet::new();
    for _ in 0..kv_count {
        let at = r.pos;
        let raw = r.string(|| "metadata key".into())?;
        let key = String::from_utf8_lossy(&raw).into_owned();
        // Messages quote the key only as a short excerpt: it is file content.
        let shown = excerpt(&raw);
        if !keys.insert(candle_name(&raw)) {
            return Err(r.fail(at, Fault::DuplicateKey(shown)));
        }
        let ty_at = r.pos;
        let ty = r.u32(|| format!("value type of '{shown}'"))?;
        let kind = ValueKind::from_code(ty).ok_or_else(|| {
            r.fail(
                ty_at,
                Fault::UnknownValueType {
                    what: format!("'{shown}'"),
                    ty,
                },
            )
        })?;
        let value = if kind == ValueKind::Array {
            let (elem, len, digest) = r.array(&shown, 1)?;
            MetaValue::Array { elem, len, digest }
        } else {
            meta_value(kind, r.scalar(kind, &shown)?)
        };
        metadata.push(MetaEntry {
            key,
            value,
            header_offset: at,
        });
    }
    Ok(metadata)
}

/// The `tensor_count` tensor infos as the header states them: unique names, 1 to 4
/// dimensions, a type candle reads. `tensor_count` must come from [`counts`] (it sizes a Vec).
fn tensor_infos<R: Read>(
    r: &mut Reader<R>,
    tensor_count: u64,
) -> Result<Vec<RawTensor>, GgufError> {
    let mut raw_tensors = Vec::with_capacity(tensor_count as usize);
    let mut names = HashSet::new();
    for _ in 0..tensor_count {
        let at = r.pos;
        let raw = r.string(|| "tensor name".into())?;
        // The name candle will look the tensor up by (trailing NULs trimmed), so that what
        // this check accepts is what candle reads.
        let name = candle_name(&raw);
        let shown = excerpt(&name);
        if !names.insert(name.clone()) {
            return Err(r.fail(at, Fault::DuplicateTensor(shown)));
        }
        let nd_at = r.pos;
        let n_dims = r.u32(|| format!("dimension count of tensor '{shown}'"))?;
        // ggml tensors have 1 to 4 dimensions; candle cannot read a 0-dimensional one.
        if n_dims == 0 || n_dims > 4 {
            return Err(r.fail(
                nd_at,
                Fault::TooManyDims {
                    name: shown,
                    n_dims,
                },
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for i in 0..n_dims {
            dims.push(r.u64(|| format!("dimension {i} of tensor '{shown}'"))?);
        }
        let ty_at = r.pos;
        let code = r.u32(|| format!("type of tensor '{shown}'"))?;
        let ty = GgmlType::from_code(code).ok_or_else(|| {
            r.fail(
                ty_at,
                Fault::UnknownGgmlType {
                    name: shown.clone(),
                    ty: code,
                },
            )
        })?;
        if ty == GgmlType::Q8_1 {
            return Err(r.fail(
                ty_at,
                Fault::UnreadableGgmlType {
                    name: shown,
                    ty: code,
                    label: "Q8_1",
                },
            ));
        }
        let offset = r.u64(|| format!("offset of tensor '{shown}'"))?;
        raw_tensors.push(RawTensor {
            name,
            ty,
            dims,
            offset,
            at,
        });
    }
    Ok(raw_tensors)
}

/// Each tensor's data range: aligned, its byte size within ggml's range, inside the file.
fn place_tensors<R: Read>(
    r: &Reader<R>,
    raw_tensors: Vec<RawTensor>,
    data_start: u64,
    alignment: u64,
) -> Result<Vec<TensorEntry>, GgufError> {
    let file_size = r.size;
    let mut tensors = Vec::with_capacity(raw_tensors.len());
    for t in raw_tensors {
        let n_bytes = tensor_bytes(&t).map_err(|f| r.fail(t.at, f))?;
        if t.offset % alignment != 0 {
            return Err(r.fail(
                t.at,
                Fault::Misaligned {
                    name: excerpt(&t.name),
                    offset: t.offset,
                    alignment,
                },
            ));
        }
        let start = u128::from(data_start) + u128::from(t.offset);
        let end = start + u128::from(n_bytes);
        if end > u128::from(file_size) {
            return Err(r.fail(
                t.at,
                Fault::PastEof {
                    name: excerpt(&t.name),
                    start,
                    end,
                    file_size,
                },
            ));
        }
        tensors.push(TensorEntry {
            name: t.name,
            ggml_type: t.ty,
            dims: t.dims,
            offset: t.offset,
            n_bytes,
            header_offset: t.at,
        });
    }
    Ok(tensors)
}

/// Byte size of a tensor's data, refusing shapes whose counts leave ggml's int64 range or
/// whose rows are not whole blocks.
fn tensor_bytes(t: &RawTensor) -> Result<u64, Fault> {
    let overflow = |what| Fault::ShapeOverflow {
        name: excerpt(&t.name),
        dims: t.dims.clone(),
        what,
    };
    let elements = t
        .dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64 && t.dims.iter().all(|&d| d <= i64::MAX as u64))
        .ok_or_else(|| overflow("elements"))?;
    if elements == 0 {
        return Err(Fault::EmptyTensor {
            name: excerpt(&t.name),
            dims: t.dims.clone(),
        });
    }
    let (block, type_size) = t.ty.block();
    let dim0 = t.dims.first().copied().unwrap_or(1);
    if dim0 % block != 0 {
        return Err(Fault::NotBlockMultiple {
            name: excerpt(&t.name),
            dim0,
            ty: t.ty,
            block,
        });
    }
    (elements / block)
        .checked_mul(type_size)
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| overflow("bytes"))
}

/// Sorts the non-empty data ranges and reports the first pair that shares bytes.
fn check_overlaps(tensors: &[TensorEntry], data_start: u64) -> Result<(), (u64, Fault)> {
    // Every range was checked to end inside the file, so these sums fit in u64.
    let mut ranges: Vec<(u64, u64, usize)> = tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| t.n_bytes > 0)
        .map(|(i, t)| (data_start + t.offset, data_start + t.offset + t.n_bytes, i))
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        let ((a_start, a_end, a), (b_start, b_end, b)) = (w[0], w[1]);
        if b_start < a_end {
            let fault = Fault::Overlap {
                a: excerpt(&tensors[a].name),
                a_start,
                a_end,
                b: excerpt(&tensors[b].name),
                b_start,
                b_end,
            };
            return Err((tensors[b].header_offset, fault));
        }
    }
    Ok(())
}
