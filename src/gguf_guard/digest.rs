//! The canonical digest of array elements, shared by the parser and the gguf-rs
//! cross-check so both sides hash values the same way.

/// One metadata value, as both readers can express it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
}

/// FNV-1a, 64-bit: stable across runs and platforms, unlike std's hasher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub(crate) fn scalar(&mut self, s: &Scalar) {
        match s {
            Scalar::Uint(v) => {
                self.bytes(b"u");
                self.bytes(&v.to_le_bytes());
            }
            Scalar::Int(v) => {
                self.bytes(b"i");
                self.bytes(&v.to_le_bytes());
            }
            // Non-finite floats are one marker: JSON readers turn them into null.
            Scalar::F32(v) if !v.is_finite() => self.bytes(b"n"),
            Scalar::F64(v) if !v.is_finite() => self.bytes(b"n"),
            Scalar::F32(v) => {
                self.bytes(b"f");
                self.bytes(&v.to_bits().to_le_bytes());
            }
            Scalar::F64(v) => {
                self.bytes(b"d");
                self.bytes(&v.to_bits().to_le_bytes());
            }
            Scalar::Bool(v) => self.bytes(if *v { b"b1" } else { b"b0" }),
            Scalar::Str(v) => {
                self.bytes(b"s");
                self.bytes(&(v.len() as u64).to_le_bytes());
                self.bytes(v.as_bytes());
            }
        }
    }
    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}
