//! A bounded, independent pre-validation of GGUF files ([`validate_gguf`]) run before candle
//! parses them. Public as part of the model toolkit: whoever loads a GGUF they did not
//! write validates it first.
//!
//! candle's reader trusts much of what the file says (it caps counts at 2^30 but still
//! allocates per entry, divides by `general.alignment` without checking for zero, and
//! multiplies dimensions in `usize`), so a corrupted or hostile file can make it allocate
//! gigabytes or panic. This parser uses std only, checks every count and length against
//! the bytes actually left in the file before allocating, and never holds more than a
//! small multiple of the file size: array elements are hashed as they stream past instead
//! of being stored. [`cross_check_with_gguf_rs`] then compares the result with a second,
//! unrelated reader.

mod cross;
mod digest;
mod parse;
#[cfg(test)]
mod tests;

pub use cross::{cross_check_with_gguf_rs, CrossCheckError};

use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Arrays of arrays deeper than this are rejected; candle's own cap is 64 too, and the
/// recursion must stay bounded whatever the file says.
const MAX_DEPTH: usize = 64;
/// Smallest possible metadata entry: key length (8) + value type (4).
const MIN_KV_BYTES: u64 = 12;
/// Smallest possible tensor info: name length (8) + n_dims (4) + type (4) + offset (8).
const MIN_TENSOR_BYTES: u64 = 24;
/// Magic, version, tensor count, metadata count.
const FIXED_HEADER_BYTES: u64 = 24;
const DEFAULT_ALIGNMENT: u64 = 32;

/// Why a GGUF file failed the check.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or read.
    #[error("read {}: {source}", file.display())]
    Io {
        /// The GGUF file, as given.
        file: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes break the format or would make a reader misbehave.
    #[error("{}: byte {offset}: {fault}", file.display())]
    Invalid {
        /// The GGUF file, as given.
        file: PathBuf,
        /// Where the offending field (or entry) starts.
        offset: u64,
        /// What is wrong.
        fault: Fault,
    },
}

impl GgufError {
    /// The format fault, if this is not an I/O error.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            GgufError::Io { .. } => None,
            GgufError::Invalid { fault, .. } => Some(fault),
        }
    }
}

/// What is wrong with a GGUF file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    /// The first four bytes are not `GGUF`.
    #[error("bad magic {}, expected \"GGUF\"", found.escape_ascii())]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A version other than 2 or 3.
    #[error("unsupported version {0}; only 2 and 3 are read")]
    UnsupportedVersion(u32),
    /// A header count larger than the file could hold.
    #[error("{what} count {count} cannot fit in a {file_size}-byte file ({min_bytes} bytes each at least)")]
    CountTooLarge {
        /// `tensor`, `metadata` or both.
        what: &'static str,
        /// The declared count.
        count: u64,
        /// Bytes in the file: every declared count must fit in them.
        file_size: u64,
        /// Minimum bytes per entry.
        min_bytes: u64,
    },
    /// A string length larger than the bytes left.
    #[error("{what} length {len} exceeds the {left} bytes left")]
    LengthTooLarge {
        /// Which string.
        what: String,
        /// Declared length in bytes.
        len: u64,
        /// Bytes left in the file.
        left: u64,
    },
    /// The file ends inside a field.
    #[error("truncated: {what} needs {need} bytes, {left} left")]
    Truncated {
        /// The field being read.
        what: String,
        /// Bytes it needs.
        need: u64,
        /// Bytes left.
        left: u64,
    },
    /// A metadata value type outside 0..=12.
    #[error("unknown value type {ty} in {what}")]
    UnknownValueType {
        /// The key (or array) involved.
        what: String,
        /// The type code.
        ty: u32,
    },
    /// An array whose elements cannot fit in the bytes left.
    #[error("{what}: {count} elements need at least {min_bytes} bytes, {left} left")]
    ArrayTooLong {
        /// Which array.
        what: String,
        /// Declared element count.
        count: u64,
        /// Minimum bytes those elements take.
        min_bytes: u64,
        /// Bytes left in the file.
        left: u64,
    },
    /// A bool byte other than 0 or 1 (candle rejects it).
    #[error("bool in {what} has byte value {value}, expected 0 or 1")]
    BadBool {
        /// The key involved.
        what: String,
        /// The byte.
        value: u8,
    },
    /// Arrays nested deeper than the limit.
    #[error("arrays in {what} nest deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The key involved.
        what: String,
    },
    /// The same key twice (candle would keep only the last).
    #[error("duplicate metadata key '{0}'")]
    DuplicateKey(String),
    /// `general.alignment` is zero, not a power of two, or of a type candle ignores.
    #[error("general.alignment {0}")]
    BadAlignment(String),
    /// No dimension, or more than 4.
    #[error("tensor '{name}' has {n_dims} dimensions; 1 to 4 are allowed")]
    TooManyDims {
        /// Tensor name.
        name: String,
        /// Declared dimension count.
        n_dims: u32,
    },
    /// A ggml type candle does not know.
    #[error("tensor '{name}' has unknown ggml type {ty}")]
    UnknownGgmlType {
        /// Tensor name.
        name: String,
        /// The type code.
        ty: u32,
    },
    /// A ggml type candle knows by name but cannot read (ggml uses Q8_1 only for
    /// activations; no model file stores it).
    #[error("tensor '{name}' has ggml type {ty} ({label}), which candle cannot read")]
    UnreadableGgmlType {
        /// Tensor name.
        name: String,
        /// The type code.
        ty: u32,
        /// The type's name.
        label: &'static str,
    },
    /// Dimensions whose element count or byte size overflows 63 bits.
    #[error("tensor '{name}' shape {dims:?} overflows when counting {what}")]
    ShapeOverflow {
        /// Tensor name.
        name: String,
        /// Dimensions as on disk.
        dims: Vec<u64>,
        /// `elements` or `bytes`.
        what: &'static str,
    },
    /// A dimension of zero: no data. candle reads such a tensor through a slice of its
    /// block type made from an empty byte buffer, whose pointer is not aligned for it
    /// (undefined behaviour; `cargo fuzz` found it), and no model has one.
    #[error("tensor '{name}' shape {dims:?} has a zero dimension (an empty tensor)")]
    EmptyTensor {
        /// Tensor name.
        name: String,
        /// Dimensions as on disk.
        dims: Vec<u64>,
    },
    /// Rows that are not whole quantization blocks.
    #[error(
        "tensor '{name}' first dimension {dim0} is not a multiple of the {ty:?} block size {block}"
    )]
    NotBlockMultiple {
        /// Tensor name.
        name: String,
        /// The innermost dimension (or 1 for a scalar).
        dim0: u64,
        /// The ggml type.
        ty: GgmlType,
        /// Its block size.
        block: u64,
    },
    /// A data offset that is not a multiple of the alignment.
    #[error("tensor '{name}' offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned {
        /// Tensor name.
        name: String,
        /// Offset relative to the data section.
        offset: u64,
        /// `general.alignment` (32 when the key is absent).
        alignment: u64,
    },
    /// Tensor data that runs past the end of the file.
    #[error(
        "tensor '{name}' data [{start}, {end}) runs past the end of the {file_size}-byte file"
    )]
    PastEof {
        /// Tensor name.
        name: String,
        /// Absolute start.
        start: u128,
        /// Absolute end (exclusive).
        end: u128,
        /// Bytes in the file.
        file_size: u64,
    },
    /// Two tensors whose data share bytes.
    #[error("tensors '{a}' and '{b}' overlap: [{a_start}, {a_end}) and [{b_start}, {b_end})")]
    Overlap {
        /// First tensor (lower start).
        a: String,
        /// Its start.
        a_start: u64,
        /// Its end.
        a_end: u64,
        /// Second tensor.
        b: String,
        /// Its start.
        b_start: u64,
        /// Its end.
        b_end: u64,
    },
    /// The same tensor name twice (candle would keep only the last).
    #[error("duplicate tensor name '{0}'")]
    DuplicateTensor(String),
}

/// A GGUF metadata value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ValueKind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueKind {
    /// From the on-disk code (0..=12).
    pub fn from_code(code: u32) -> Option<Self> {
        use ValueKind::*;
        const ALL: [ValueKind; 13] = [
            U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
        ];
        ALL.get(code as usize).copied()
    }

    /// Fewest bytes one value of this type takes on disk.
    fn min_bytes(self) -> u64 {
        use ValueKind::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

/// A tensor data type candle can load, with its on-disk code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    BF16,
}

impl GgmlType {
    /// From the on-disk code; `None` for types candle does not know.
    pub fn from_code(code: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match code {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            15 => Q8K,
            30 => BF16,
            _ => return None,
        })
    }

    /// The on-disk code.
    pub fn code(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2K => 10,
            Q3K => 11,
            Q4K => 12,
            Q5K => 13,
            Q6K => 14,
            Q8K => 15,
            BF16 => 30,
        }
    }

    /// Elements per block, and bytes per block (ggml's `blck_size` and `type_size`).
    pub fn block(self) -> (u64, u64) {
        use GgmlType::*;
        match self {
            F32 => (1, 4),
            F16 | BF16 => (1, 2),
            Q4_0 => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q8_1 => (32, 36),
            Q2K => (256, 84),
            Q3K => (256, 110),
            Q4K => (256, 144),
            Q5K => (256, 176),
            Q6K => (256, 210),
            Q8K => (256, 292),
        }
    }
}

/// A metadata value as summarized: scalars in full, arrays as type, length and digest.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// u8, u16, u32 or u64.
    Uint(ValueKind, u64),
    /// i8, i16, i32 or i64.
    Int(ValueKind, i64),
    /// f32.
    F32(f32),
    /// f64.
    F64(f64),
    /// bool.
    Bool(bool),
    /// A string (invalid UTF-8 replaced, as candle does).
    Str(String),
    /// An array: element type, length, and a digest of the elements
    /// ([`cross_check_with_gguf_rs`] recomputes it from another reader's values).
    Array {
        /// Element type.
        elem: ValueKind,
        /// Element count.
        len: u64,
        /// FNV-1a over the canonical element encoding.
        digest: u64,
    },
}

/// One metadata entry.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaEntry {
    /// The key as stored, invalid UTF-8 replaced as candle does.
    pub key: String,
    /// Its value; an array as its type, length and digest, never its elements.
    pub value: MetaValue,
    /// Byte offset where the entry (its key length) starts.
    pub header_offset: u64,
}

/// One tensor info, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    /// The name candle looks the tensor up by (trailing NULs trimmed).
    pub name: String,
    /// The data type.
    pub ggml_type: GgmlType,
    /// Dimensions as on disk, innermost first (ggml `ne` order; candle's shape is reversed).
    pub dims: Vec<u64>,
    /// Data offset relative to [`GgufSummary::data_start`].
    pub offset: u64,
    /// Data size in bytes.
    pub n_bytes: u64,
    /// Byte offset where the tensor info (its name length) starts.
    pub header_offset: u64,
}

/// What [`validate_gguf`] found in a valid file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufSummary {
    /// File size in bytes.
    pub file_size: u64,
    /// 2 or 3.
    pub version: u32,
    /// Metadata entries in file order.
    pub metadata: Vec<MetaEntry>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorEntry>,
    /// Tensor data alignment.
    pub alignment: u64,
    /// Where the header ends.
    pub header_end: u64,
    /// Absolute offset of the tensor data section.
    pub data_start: u64,
}

impl GgufSummary {
    /// The metadata value for `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }
}

/// Checks `path` is a well-formed GGUF v2/v3 file whose header and tensor ranges candle can
/// read without trusting anything unchecked, and summarizes it.
pub fn validate_gguf(path: &Path) -> Result<GgufSummary, GgufError> {
    let io = |source| GgufError::Io {
        file: path.to_path_buf(),
        source,
    };
    // Every bound below is the file's size, so it must be a regular file: a device or FIFO
    // reports size 0 whatever it streams.
    crate::fsutil::require_regular_file(path).map_err(|e| io(e.source))?;
    let f = std::fs::File::open(path).map_err(io)?;
    let file_size = f.metadata().map_err(io)?.len();
    let mut r = parse::Reader::new(BufReader::new(f), file_size, path);
    let summary = parse::header(&mut r)?;
    Ok(summary)
}

/// [`validate_gguf`] on bytes already in memory (read from `path`, which errors name).
pub fn check_gguf_bytes(bytes: &[u8], path: &Path) -> Result<GgufSummary, GgufError> {
    let mut r = parse::Reader::new(bytes, bytes.len() as u64, path);
    parse::header(&mut r)
}

pub(crate) fn invalid(file: &Path, offset: u64, fault: Fault) -> GgufError {
    GgufError::Invalid {
        file: file.to_path_buf(),
        offset,
        fault,
    }
}
