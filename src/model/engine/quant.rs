//! [`QuantRows`]: a GGML block-quantized matrix kept in its stored bytes, multiplied by
//! f32 activations without rounding them.
//!
//! Why: one decoded token reads every weight once. Dequantized to f32, SmolLM2-135M is
//! 540 MB per token, which this machine's memory streams at ~12 GB/s (≈ 22 tokens/s at
//! best); its Q4_1/Q8_0 blocks are 96 MB. These kernels expand a block in registers and
//! take its dot product with f32 activations, so the result is the dot product with the
//! dequantized weights up to f32 summation order. (llama.cpp instead rounds the
//! activations to 8 bits; that would change the numbers, which this path must not.)
//!
//! Each block of 32 weights is `w_i = d·q_i + m` (Q4_1), `d·(q_i − 8)` (Q4_0) or
//! `d·q_i` (Q8_0), so a block's contribution is `d·Σ q_i x_i + m·Σ x_i`: the `Σ x_i` of
//! each block of each activation row is computed once per product and shared by every
//! output row.

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

/// Weights per GGML block for the types handled here.
pub(crate) const BLOCK: usize = 32;

/// The block layouts these kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QKind {
    /// `d: f16, qs: [u8; 16]`, `w = d·(q − 8)`.
    Q4_0,
    /// `d: f16, m: f16, qs: [u8; 16]`, `w = d·q + m`.
    Q4_1,
    /// `d: f16, qs: [i8; 32]`, `w = d·q`.
    Q8_0,
}

impl QKind {
    fn of(t: GgmlDType) -> Option<QKind> {
        match t {
            GgmlDType::Q4_0 => Some(QKind::Q4_0),
            GgmlDType::Q4_1 => Some(QKind::Q4_1),
            GgmlDType::Q8_0 => Some(QKind::Q8_0),
            _ => None,
        }
    }

    /// Bytes of one block.
    fn block_bytes(self) -> usize {
        match self {
            QKind::Q4_0 => 18,
            QKind::Q4_1 => 20,
            QKind::Q8_0 => 34,
        }
    }

    /// Whether blocks carry a per-block offset (so the product needs `Σ x_i`).
    pub(crate) fn needs_sums(self) -> bool {
        !matches!(self, QKind::Q8_0)
    }
}

/// A `(rows, cols)` matrix of GGML blocks, rows contiguous, as the file stored it.
#[derive(Debug)]
pub(crate) struct QuantRows {
    kind: QKind,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    bytes: Vec<u8>,
}

impl QuantRows {
    /// The blocks of a 2-D quantized tensor of a handled type; `None` otherwise (the
    /// caller then multiplies the dequantized f32 copy).
    pub(crate) fn from_qtensor(q: &QTensor) -> Option<QuantRows> {
        let kind = QKind::of(q.dtype())?;
        let (rows, cols) = q.shape().dims2().ok()?;
        if cols % BLOCK != 0 {
            return None;
        }
        let row_bytes = cols / BLOCK * kind.block_bytes();
        let bytes = q.data().ok()?.into_owned();
        (bytes.len() == rows * row_bytes).then_some(QuantRows {
            kind,
            rows,
            cols,
            row_bytes,
            bytes,
        })
    }

    /// `(output, input)` features.
    pub(crate) fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The block layout.
    pub(crate) fn kind(&self) -> QKind {
        self.kind
    }

    /// `out(r, o) (+)= Σ_c w[o][c]·x[r][c]` for `o` in `o0..o1` and every activation row
    /// `r` (`x` is `(m, cols)`, `sums` its per-block sums `(m, cols / 32)` when the kind
    /// needs them).
    ///
    /// # Safety
    /// `out` must address an `(m, out.ld)` buffer with `o1 <= out.ld`, which no other
    /// thread writes in columns `o0..o1`; `o1 <= rows`.
    pub(crate) unsafe fn dot_rows(&self, o0: usize, o1: usize, x: &[f32], sums: &[f32], out: Out) {
        let m = x.len() / self.cols;
        let nb = self.cols / BLOCK;
        assert!(
            o1 <= self.rows
                && x.len() == m * self.cols
                && (!self.kind.needs_sums() || sums.len() >= m * nb)
        );
        #[cfg(target_arch = "x86_64")]
        if simd::available() {
            simd::rows(
                self.kind,
                &self.bytes[o0 * self.row_bytes..o1 * self.row_bytes],
                self.row_bytes,
                o0,
                nb,
                m,
                x,
                sums,
                out,
            );
            return;
        }
        for o in o0..o1 {
            let w = &self.bytes[o * self.row_bytes..(o + 1) * self.row_bytes];
            for r in 0..m {
                let xr = &x[r * self.cols..(r + 1) * self.cols];
                let sr = if self.kind.needs_sums() {
                    &sums[r * nb..(r + 1) * nb]
                } else {
                    &[][..]
                };
                out.put(r, o, scalar_dot(self.kind, w, nb, xr, sr));
            }
        }
    }
}

/// Where products go: element `(r, o)` of a row-major `(·, ld)` buffer, stored or added
/// (a projection can add straight into the residual stream).
#[derive(Clone, Copy)]
pub(crate) struct Out {
    pub(crate) ptr: *mut f32,
    pub(crate) ld: usize,
    pub(crate) add: bool,
}

impl Out {
    /// # Safety
    /// `(r, o)` must be inside the buffer and written by this thread only.
    #[inline(always)]
    unsafe fn put(self, r: usize, o: usize, v: f32) {
        let p = self.ptr.add(r * self.ld + o);
        *p = if self.add { *p + v } else { v };
    }
}

/// Per-block sums `Σ x_i` of each row of `x` (`(m, cols)`), the offset term's factor.
pub(crate) fn block_sums(x: &[f32]) -> Vec<f32> {
    x.chunks_exact(BLOCK).map(|c| c.iter().sum()).collect()
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// The portable reference the SIMD kernels are tested against.
fn scalar_dot(kind: QKind, w: &[u8], nb: usize, x: &[f32], sums: &[f32]) -> f32 {
    let bb = kind.block_bytes();
    let mut acc = 0f32;
    let mut offs = 0f32;
    for b in 0..nb {
        let blk = &w[b * bb..(b + 1) * bb];
        let xb = &x[b * BLOCK..(b + 1) * BLOCK];
        let d = f16_at(blk, 0);
        let mut s = 0f32;
        match kind {
            QKind::Q8_0 => {
                for (i, &xv) in xb.iter().enumerate() {
                    s += (blk[2 + i] as i8) as f32 * xv;
                }
            }
            QKind::Q4_0 | QKind::Q4_1 => {
                let qs = if kind == QKind::Q4_1 {
                    &blk[4..20]
                } else {
                    &blk[2..18]
                };
                for (j, &q) in qs.iter().enumerate() {
                    s += (q & 0x0F) as f32 * xb[j] + (q >> 4) as f32 * xb[j + 16];
                }
                let m = if kind == QKind::Q4_1 {
                    f16_at(blk, 2)
                } else {
                    -8.0 * d
                };
                offs += m * sums[b];
            }
        }
        acc += d * s;
    }
    acc + offs
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! AVX-512 and AVX2 kernels. No closures here: a closure does not inherit its
    //! function's `target_feature`, and an intrinsic in one becomes an out-of-line call.
    use super::{Out, QKind, BLOCK};
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Level {
        Avx512,
        Avx2,
        None,
    }

    fn level() -> Level {
        static L: OnceLock<Level> = OnceLock::new();
        *L.get_or_init(|| {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if avx2 && is_x86_feature_detected!("avx512f") {
                Level::Avx512
            } else if avx2 {
                Level::Avx2
            } else {
                Level::None
            }
        })
    }

    pub(super) fn available() -> bool {
        level() != Level::None
    }

    /// [`super::QuantRows::dot_rows`] on `w`, the bytes of rows `o0..`, in the best
    /// instruction set; the row loop runs inside it so that the kernels inline.
    ///
    /// # Safety
    /// [`available`] must hold; as [`super::QuantRows::dot_rows`].
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn rows(
        kind: QKind,
        w: &[u8],
        row_bytes: usize,
        o0: usize,
        nb: usize,
        m: usize,
        x: &[f32],
        sums: &[f32],
        out: Out,
    ) {
        let args = (w, row_bytes, o0, nb, m, x.as_ptr(), sums.as_ptr(), out);
        match (level(), kind) {
            (Level::Avx512, QKind::Q4_1) => rows512::<1>(args),
            (Level::Avx512, QKind::Q4_0) => rows512::<0>(args),
            (Level::Avx512, QKind::Q8_0) => rows512::<8>(args),
            (_, QKind::Q4_1) => rows256::<1>(args),
            (_, QKind::Q4_0) => rows256::<0>(args),
            (_, QKind::Q8_0) => rows256::<8>(args),
        }
    }

    type Args<'a> = (
        &'a [u8],
        usize,
        usize,
        usize,
        usize,
        *const f32,
        *const f32,
        Out,
    );

    /// The row loop over one instruction set's dot kernel, written once: a generic over
    /// the kernel would be a function pointer or a closure, and neither inherits the
    /// `target_feature` that lets the kernel inline.
    macro_rules! rows_with {
        ($name:ident, $features:literal, $dot:ident) => {
            #[target_feature(enable = $features)]
            unsafe fn $name<const K: u8>((w, row_bytes, o0, nb, m, x, sums, out): Args<'_>) {
                for (i, wr) in w.chunks_exact(row_bytes).enumerate() {
                    let mut r = 0;
                    while r < m {
                        let take = (m - r).min(4);
                        let (xs, ss) = (x.add(r * nb * BLOCK), sums.wrapping_add(r * nb));
                        let mut acc = [0f32; 4];
                        match take {
                            1 => $dot::<1, K>(wr.as_ptr(), nb, xs, ss, &mut acc),
                            2 => $dot::<2, K>(wr.as_ptr(), nb, xs, ss, &mut acc),
                            3 => $dot::<3, K>(wr.as_ptr(), nb, xs, ss, &mut acc),
                            _ => $dot::<4, K>(wr.as_ptr(), nb, xs, ss, &mut acc),
                        }
                        for (j, v) in acc[..take].iter().enumerate() {
                            out.put(r + j, o0 + i, *v);
                        }
                        r += take;
                    }
                }
            }
        };
    }
    rows_with!(rows512, "avx512f,avx2,fma,f16c", dot512);
    rows_with!(rows256, "avx2,fma,f16c", dot256);

    /// How far ahead of the block being read the next bytes are requested: memory, not
    /// arithmetic, bounds a matrix-vector product.
    const PREFETCH: usize = 2048;

    /// Block bytes and offset of the quants for kind code `K` (0 = Q4_0, 1 = Q4_1, 8 = Q8_0).
    const fn layout(k: u8) -> (usize, usize) {
        match k {
            0 => (18, 2),
            1 => (20, 4),
            _ => (34, 2),
        }
    }

    /// `(d, m)` of a block: the scale and the per-weight offset.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scales<const K: u8>(blk: *const u8) -> (f32, f32) {
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(
            blk as *const i32,
        )));
        let d = _mm_cvtss_f32(v);
        match K {
            1 => (d, _mm_cvtss_f32(_mm_movehdup_ps(v))),
            0 => (d, -8.0 * d),
            _ => (d, 0.0),
        }
    }

    /// One block's 32 weights as integers, in two 16-wide vectors.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    unsafe fn expand512<const K: u8>(blk: *const u8) -> (__m512, __m512) {
        let (_, off) = layout(K);
        if K == 8 {
            let a = _mm_loadu_si128(blk.add(off) as *const __m128i);
            let c = _mm_loadu_si128(blk.add(off + 16) as *const __m128i);
            (
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(a)),
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c)),
            )
        } else {
            let mask = _mm_set1_epi8(0x0F);
            let v = _mm_loadu_si128(blk.add(off) as *const __m128i);
            let l = _mm_and_si128(v, mask);
            let h = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
            (
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(l)),
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(h)),
            )
        }
    }

    /// One block into `R` rows' accumulators.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    unsafe fn step512<const R: usize, const K: u8>(
        w: *const u8,
        b: usize,
        nb: usize,
        x: *const f32,
        sums: *const f32,
        acc: &mut [__m512; R],
        offs: &mut [f32; R],
    ) {
        let blk = w.add(b * layout(K).0);
        _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH) as *const i8);
        let (lo, hi) = expand512::<K>(blk);
        let (d, m) = scales::<K>(blk);
        let dv = _mm512_set1_ps(d);
        for r in 0..R {
            let xb = x.add((r * nb + b) * BLOCK);
            let t = _mm512_fmadd_ps(
                hi,
                _mm512_loadu_ps(xb.add(16)),
                _mm512_mul_ps(lo, _mm512_loadu_ps(xb)),
            );
            acc[r] = _mm512_fmadd_ps(t, dv, acc[r]);
            if K != 8 {
                offs[r] += m * *sums.add(r * nb + b);
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    unsafe fn dot512<const R: usize, const K: u8>(
        w: *const u8,
        nb: usize,
        x: *const f32,
        sums: *const f32,
        out: &mut [f32; 4],
    ) {
        // Two sets of accumulators (even and odd blocks), unrolled by hand so that they
        // stay in registers, halve the dependency chain.
        let (mut acc0, mut acc1) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
        let (mut offs0, mut offs1) = ([0f32; R], [0f32; R]);
        let mut b = 0;
        while b + 1 < nb {
            step512::<R, K>(w, b, nb, x, sums, &mut acc0, &mut offs0);
            step512::<R, K>(w, b + 1, nb, x, sums, &mut acc1, &mut offs1);
            b += 2;
        }
        if b < nb {
            step512::<R, K>(w, b, nb, x, sums, &mut acc0, &mut offs0);
        }
        for r in 0..R {
            out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r])) + (offs0[r] + offs1[r]);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn widen(v: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn widen_signed(v: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot256<const R: usize, const K: u8>(
        w: *const u8,
        nb: usize,
        x: *const f32,
        sums: *const f32,
        out: &mut [f32; 4],
    ) {
        let (bb, off) = layout(K);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut offs = [0f32; R];
        let mask = _mm_set1_epi8(0x0F);
        for b in 0..nb {
            let blk = w.add(b * bb);
            _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH) as *const i8);
            let q = if K == 8 {
                let a = _mm_loadu_si128(blk.add(off) as *const __m128i);
                let c = _mm_loadu_si128(blk.add(off + 16) as *const __m128i);
                [
                    widen_signed(a),
                    widen_signed(_mm_unpackhi_epi64(a, a)),
                    widen_signed(c),
                    widen_signed(_mm_unpackhi_epi64(c, c)),
                ]
            } else {
                let v = _mm_loadu_si128(blk.add(off) as *const __m128i);
                let l = _mm_and_si128(v, mask);
                let h = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
                [
                    widen(l),
                    widen(_mm_unpackhi_epi64(l, l)),
                    widen(h),
                    widen(_mm_unpackhi_epi64(h, h)),
                ]
            };
            let (d, m) = scales::<K>(blk);
            let dv = _mm256_set1_ps(d);
            for r in 0..R {
                let xb = x.add((r * nb + b) * BLOCK);
                let mut t = _mm256_mul_ps(q[0], _mm256_loadu_ps(xb));
                t = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(xb.add(8)), t);
                t = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xb.add(16)), t);
                t = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(xb.add(24)), t);
                acc[r] = _mm256_fmadd_ps(t, dv, acc[r]);
                if K != 8 {
                    offs[r] += m * *sums.add(r * nb + b);
                }
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]) + offs[r];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;
    use candle_core::{Device, Tensor};

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = SeededRng::new(seed);
        (0..n).map(|_| r.uniform_sym(1.0)).collect()
    }

    #[test]
    fn kernels_equal_dequantized_dot_products() {
        let (rows, cols) = (7, 96);
        let w = Tensor::from_vec(rand(rows * cols, 1), (rows, cols), &Device::Cpu).unwrap();
        for ty in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let q = QTensor::quantize(&w, ty).unwrap();
            let deq: Vec<f32> = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let qr = QuantRows::from_qtensor(&q).unwrap();
            for m in 1..=6 {
                let x = rand(m * cols, 10 + m as u64);
                let sums = block_sums(&x);
                let mut got = vec![0f32; m * rows];
                // SAFETY: got is (m, rows).
                unsafe {
                    qr.dot_rows(
                        0,
                        rows,
                        &x,
                        &sums,
                        Out {
                            ptr: got.as_mut_ptr(),
                            ld: rows,
                            add: false,
                        },
                    )
                };
                for r in 0..m {
                    for o in 0..rows {
                        let want: f32 =
                            (0..cols).map(|c| deq[o * cols + c] * x[r * cols + c]).sum();
                        let scalar = scalar_dot(
                            qr.kind,
                            &qr.bytes[o * qr.row_bytes..],
                            cols / BLOCK,
                            &x[r * cols..],
                            &sums[r * cols / BLOCK..],
                        );
                        assert!(
                            (got[r * rows + o] - want).abs() < 1e-4,
                            "{ty:?} m={m} r={r} o={o}: {} vs {want}",
                            got[r * rows + o]
                        );
                        assert!((scalar - want).abs() < 1e-4, "{ty:?} scalar");
                    }
                }
            }
        }
        let k = QTensor::quantize(
            &Tensor::zeros((2, 256), candle_core::DType::F32, &Device::Cpu).unwrap(),
            GgmlDType::Q4K,
        )
        .unwrap();
        assert!(QuantRows::from_qtensor(&k).is_none());
    }
}
