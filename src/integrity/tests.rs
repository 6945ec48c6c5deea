//! Catch rates of the manifest and the health check on single seeded flips in trained
//! tiny_1m's matrices (200 seeds per class, 1,200 flips), against bands written before
//! the first run from the float format alone (2026-11-29):
//! * the manifest hashes every tensor's bytes: every flip changes its tensor's SHA-256.
//! * the health check flags a tensor whose largest |x| exceeds 4096 × its median |x|.
//!   tiny_1m's matrix weights have rms 0.044–0.082 and max |w| 0.20–0.31 (median |w| ≈
//!   0.03–0.06, max/median ≈ 5–10), so only a flip that multiplies a weight by ≳ 2^11
//!   is seen. In f32 that is the exponent MSB alone (×2^128 for any |w| < 2; a weight of
//!   exactly 0 would become 2.0 and pass unseen, hence ≥ 0.99, not 1). Sign, mantissa and
//!   low-mantissa flips change a value by at most ×2: never flagged. An exponent flip hits
//!   the MSB 1 time in 8; the other seven bits of a biased exponent 0b0111_xxxx either
//!   lower the value or raise it by ×2…×256, short of 2^11 for |w| ≤ 0.31: ≈ 1/8 caught
//!   (band 0.05–0.25 for 200 draws, sd 0.023). An `any` flip hits the MSB 1 time in 32
//!   (band 0.005–0.08, sd 0.012).

use super::catch::{catch_rates, CatchRate};
use crate::stored::StoredFile;
use crate::transform::flip::{BitClass, Region};

const SEEDS: u64 = 200;

fn band(c: BitClass) -> (f64, f64) {
    match c {
        BitClass::ExponentMsb => (0.99, 1.0),
        BitClass::Exponent => (0.05, 0.25),
        BitClass::Any => (0.005, 0.08),
        BitClass::Sign | BitClass::Mantissa | BitClass::MantissaLow => (0.0, 0.0),
    }
}

fn within(r: &CatchRate, (lo, hi): (f64, f64)) -> bool {
    (lo..=hi).contains(&r.health_rate())
}

#[test]
fn the_manifest_catches_every_single_flip_and_the_health_check_each_class_within_its_band() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny_1m/model.safetensors");
    let mut file = StoredFile::read(&path).unwrap();
    let clean = file.bytes.clone();
    let rates = catch_rates(&mut file, &BitClass::ALL, Region::Weights, SEEDS).unwrap();
    assert_eq!(file.bytes, clean, "every flip was undone");
    let total: usize = rates.iter().map(|r| r.flips).sum();
    assert!(total >= 1000, "{total} flips");
    for r in &rates {
        println!(
            "{:<13} flips {:>4}  manifest {:.3}  health {:.3}",
            r.bits.name(),
            r.flips,
            r.manifest_rate(),
            r.health_rate()
        );
        assert_eq!(
            r.manifest_caught, r.flips,
            "{}: the manifest missed a flip",
            r.bits
        );
        assert!(
            within(r, band(r.bits)),
            "{}: health catch rate {} outside {:?}",
            r.bits,
            r.health_rate(),
            band(r.bits)
        );
    }
    // The bands can fail: the exponent-MSB band rejects what the sign class measured,
    // and the sign band rejects what the exponent-MSB class measured.
    let of = |c: BitClass| rates.iter().find(|r| r.bits == c).unwrap();
    assert!(!within(of(BitClass::Sign), band(BitClass::ExponentMsb)));
    assert!(!within(of(BitClass::ExponentMsb), band(BitClass::Sign)));
}
