//! Row kernels for the fused cross-entropy: a branch-free `exp` and the two passes over a
//! row of logits, compiled once more for AVX2/AVX-512 and picked at run time.
//!
//! Why our own `exp`: the libm call does not vectorize and one training step of a 16000-token
//! vocabulary needs 2 × 33M of them. Why results are identical on every path: each kernel
//! spells out its 16 accumulator lanes and uses no fused multiply-add, so the compiler may
//! widen the loops but not reorder a single rounding.

/// Lanes of the explicit accumulators: one AVX-512 register, two AVX2 registers.
const LANES: usize = 16;

/// `e^x` for `x` in f32, within 2 ulp of the exact value for `x` in `[-87, 88]`; inputs
/// below −87 give ~1.6e−38 instead of an underflow, which is what softmax needs (a
/// masked logit contributes nothing measurable). Cephes' `expf`: `x = n ln2 + r` with
/// `|r| <= ln2 / 2`, a degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part with few mantissa bits (exact products with n) and the rest.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer in any SIMD width.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    // t's low mantissa bits hold n + 2^22; reading them as an integer avoids a float→int
    // conversion, whose saturating semantics would stop the loop from vectorizing.
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Cephes' coefficients; its last one, 5.0000001e-1, is exactly 0.5 in f32.
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_6e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // n is in [-126, 127], so the biased exponent stays in the normal range.
    y * f32::from_bits((ni.wrapping_add(127) as u32) << 23)
}

/// Largest value of `row` and whether any entry is NaN (NaN must reach the loss, and a
/// plain max would skip it).
#[inline(always)]
fn max_and_nan(row: &[f32]) -> (f32, bool) {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut nan = [false; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
            nan[k] |= c[k].is_nan();
        }
    }
    let mut best = f32::NEG_INFINITY;
    let mut any_nan = nan.iter().any(|&b| b);
    for &v in m.iter().chain(tail) {
        best = if v > best { v } else { best };
        any_nan |= v.is_nan();
    }
    (best, any_nan)
}

/// `Σ e^(x − max)` over the row, in f32 lanes combined in f64.
#[inline(always)]
fn sum_exp(row: &[f32], max: f32) -> f64 {
    let mut acc = [0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] += exp_f32(c[k] - max);
        }
    }
    let mut s: f64 = acc.iter().map(|&a| f64::from(a)).sum();
    for &v in tail {
        s += f64::from(exp_f32(v - max));
    }
    s
}

/// Elements per block of [`row_lse_generic`]: 4 KiB, so the second look at a block hits L1.
const BLOCK: usize = 1024;

/// `(log Σ e^x, NaN seen)` of one row in one pass over memory: each block's max, then its
/// exponentials against the running max (the running sum rescaled when the max grows).
#[inline(always)]
fn row_lse_generic(row: &[f32]) -> (f64, bool) {
    let mut max = f32::NEG_INFINITY;
    let mut sum = 0f64;
    let mut nan = false;
    for block in row.chunks(BLOCK) {
        let (m, n) = max_and_nan(block);
        nan |= n;
        if m > max {
            sum *= (f64::from(max) - f64::from(m)).exp();
            max = m;
        }
        sum += sum_exp(block, max);
    }
    (f64::from(max) + sum.ln(), nan)
}

/// `x ← scale · e^(x − lse)`: the softmax of the row times the incoming gradient.
#[inline(always)]
fn row_softmax_scaled_generic(row: &mut [f32], lse: f32, scale: f32) {
    for x in row.iter_mut() {
        *x = scale * exp_f32(*x - lse);
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn lse_avx512(row: &[f32]) -> (f64, bool) {
        super::row_lse_generic(row)
    }
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn lse_avx2(row: &[f32]) -> (f64, bool) {
        super::row_lse_generic(row)
    }
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_avx512(row: &mut [f32], lse: f32, scale: f32) {
        super::row_softmax_scaled_generic(row, lse, scale)
    }
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn softmax_avx2(row: &mut [f32], lse: f32, scale: f32) {
        super::row_softmax_scaled_generic(row, lse, scale)
    }
}

/// `log Σ e^x` of a row in f64, and whether the row holds a NaN.
pub(crate) fn row_lse(row: &[f32]) -> (f64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each variant is only called when the CPU reports its feature.
        if std::arch::is_x86_feature_detected!("avx512f") {
            return unsafe { simd::lse_avx512(row) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return unsafe { simd::lse_avx2(row) };
        }
    }
    row_lse_generic(row)
}

/// `row[j] ← scale · e^(row[j] − lse)`.
pub(crate) fn row_softmax_scaled(row: &mut [f32], lse: f32, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: as in `row_lse`.
        if std::arch::is_x86_feature_detected!("avx512f") {
            return unsafe { simd::softmax_avx512(row, lse, scale) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return unsafe { simd::softmax_avx2(row, lse, scale) };
        }
    }
    row_softmax_scaled_generic(row, lse, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_over_its_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = f64::from(exp_f32(x));
            let want = f64::from(x).exp();
            let ulp = f64::from(f32::EPSILON) * want;
            worst = worst.max((got - want).abs() / ulp);
            x += 0.0137;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn simd_and_scalar_paths_agree_bit_for_bit() {
        let mut r = crate::rng::SeededRng::new(9);
        let row: Vec<f32> = (0..1003).map(|_| r.uniform_sym(30.0)).collect();
        let (a, _) = row_lse(&row);
        let (b, _) = row_lse_generic(&row);
        assert_eq!(a.to_bits(), b.to_bits());
        let (mut o1, mut o2) = (row.clone(), row.clone());
        row_softmax_scaled(&mut o1, a as f32, 0.5);
        row_softmax_scaled_generic(&mut o2, a as f32, 0.5);
        assert!(o1.iter().zip(&o2).all(|(x, y)| x.to_bits() == y.to_bits()));
        let exact: f64 = row.iter().map(|&v| f64::from(v).exp()).sum::<f64>().ln();
        assert!((a - exact).abs() < 1e-5, "{a} vs {exact}");
    }

    #[test]
    fn nan_is_reported() {
        let mut row = vec![0.5f32; 40];
        assert!(!row_lse(&row).1);
        row[37] = f32::NAN;
        assert!(row_lse(&row).1);
    }
}
