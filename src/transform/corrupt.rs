//! Seeded corruption: the damage a broken converter, disk or transfer does.
//!
//! Matrices are chosen among the transformer blocks' projections: every one of them takes
//! part in every forward pass, so damage there can always show in behaviour (a flip in the
//! embedding row of a token no prompt uses could not, and would make a detection claim
//! depend on luck rather than on the detector).

use crate::model::{ModelError, Weight, Weights};
use crate::rng::SeededRng;
use crate::variant::Corruption;
use candle_core::{Device, Tensor};

/// What was damaged, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// Tensor name.
    pub tensor: String,
    /// Flat element index or row pair.
    pub at: String,
    /// Value before and after, where one element changed.
    pub values: Option<(f32, f32)>,
    /// Which corruption.
    pub kind: Corruption,
}

impl Damage {
    /// One line for reports.
    pub fn describe(&self) -> String {
        let v = self
            .values
            .map(|(a, b)| format!(" ({a:e} → {b:e})"))
            .unwrap_or_default();
        format!("{}: {} at {}{v}", self.kind.name(), self.tensor, self.at)
    }
}

/// Applies `kind` with `seed`; the same inputs always damage the same place.
pub fn corrupt(
    base: &Weights,
    kind: Corruption,
    seed: u64,
    used_tokens: &[u32],
) -> Result<(Weights, Damage), ModelError> {
    let mut rng = SeededRng::for_stream(seed, kind.name());
    let mut out = base.clone();
    let layer_mats: Vec<&String> = base
        .tensors
        .iter()
        .filter(|(n, w)| n.starts_with("model.layers.") && w.shape().len() == 2)
        .map(|(n, _)| n)
        .collect();
    if layer_mats.is_empty() {
        return Err(ModelError::Unsupported {
            what: "corruption of a model without layer matrices".into(),
        });
    }
    let damage = match kind {
        Corruption::FlipExponent | Corruption::FlipMantissa => {
            flip_bit(base, &mut out, &mut rng, &layer_mats, kind)?
        }
        Corruption::ZeroTensor => zero_tensor(base, &mut out, &mut rng, &layer_mats)?,
        Corruption::SwapEmbedRows => swap_embed_rows(base, &mut out, &mut rng, used_tokens)?,
        Corruption::ScaleNorm => scale_norm(base, &mut out)?,
    };
    Ok((out, damage))
}

/// A uniform index below `n` from the corruption's stream.
fn pick(rng: &mut SeededRng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// Flips one bit (30: the exponent's top bit; 0: the mantissa's lowest) of one element of
/// one layer matrix.
fn flip_bit(
    base: &Weights,
    out: &mut Weights,
    rng: &mut SeededRng,
    layer_mats: &[&String],
    kind: Corruption,
) -> Result<Damage, ModelError> {
    let name = layer_mats[pick(rng, layer_mats.len())].clone();
    let mut v = flat_f32(base.get(&name)?)?;
    let i = pick(rng, v.len());
    let bit = if kind == Corruption::FlipExponent {
        30
    } else {
        0
    };
    let before = v[i];
    v[i] = f32::from_bits(before.to_bits() ^ (1 << bit));
    let after = v[i];
    put(out, &name, v)?;
    Ok(Damage {
        tensor: name,
        at: format!("element {i}, bit {bit}"),
        values: Some((before, after)),
        kind,
    })
}

/// Zeroes one layer matrix.
fn zero_tensor(
    base: &Weights,
    out: &mut Weights,
    rng: &mut SeededRng,
    layer_mats: &[&String],
) -> Result<Damage, ModelError> {
    let kind = Corruption::ZeroTensor;
    let name = layer_mats[pick(rng, layer_mats.len())].clone();
    let n = flat_f32(base.get(&name)?)?.len();
    put(out, &name, vec![0.0; n])?;
    Ok(Damage {
        tensor: name,
        at: "all elements".into(),
        values: None,
        kind,
    })
}

/// Swaps the embedding rows of two distinct tokens the evaluation uses.
fn swap_embed_rows(
    base: &Weights,
    out: &mut Weights,
    rng: &mut SeededRng,
    used_tokens: &[u32],
) -> Result<Damage, ModelError> {
    let kind = Corruption::SwapEmbedRows;
    let name = "model.embed_tokens.weight".to_string();
    let mut ids: Vec<u32> = used_tokens.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Err(ModelError::Unsupported {
            what: "swap-embed-rows needs two distinct evaluation tokens".into(),
        });
    }
    let a = ids[pick(rng, ids.len())] as usize;
    let b = loop {
        let b = ids[pick(rng, ids.len())] as usize;
        if b != a {
            break b;
        }
    };
    let shape = base.get(&name)?.shape();
    let mut v = flat_f32(base.get(&name)?)?;
    let h = shape[1];
    for k in 0..h {
        v.swap(a * h + k, b * h + k);
    }
    put(out, &name, v)?;
    Ok(Damage {
        tensor: name,
        at: format!("rows {a} and {b}"),
        values: None,
        kind,
    })
}

/// Doubles the final norm's weights.
fn scale_norm(base: &Weights, out: &mut Weights) -> Result<Damage, ModelError> {
    let kind = Corruption::ScaleNorm;
    let name = "model.norm.weight".to_string();
    let v: Vec<f32> = flat_f32(base.get(&name)?)?
        .into_iter()
        .map(|x| x * 2.0)
        .collect();
    put(out, &name, v)?;
    Ok(Damage {
        tensor: name,
        at: "all elements ×2".into(),
        values: None,
        kind,
    })
}

fn flat_f32(w: &Weight) -> Result<Vec<f32>, ModelError> {
    Ok(w.to_f32_tensor(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// Replaces a tensor by f32 values of the same shape (a damaged quantized tensor is kept
/// dequantized: the damage, not a requantization, is what is being tested).
fn put(w: &mut Weights, name: &str, values: Vec<f32>) -> Result<(), ModelError> {
    let shape = w.get(name)?.shape();
    let t = Tensor::from_vec(values, shape, &Device::Cpu)?;
    w.tensors.insert(name.to_string(), Weight::Float(t));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Weights {
        crate::testutil::tiny_weights(16, 32, 2, 1, 3)
    }

    fn count_diff(a: &Weights, b: &Weights) -> Vec<(String, usize)> {
        let mut d = vec![];
        for (n, w) in &a.tensors {
            let x = flat_f32(w).unwrap();
            let y = flat_f32(&b.tensors[n]).unwrap();
            let c = x
                .iter()
                .zip(&y)
                .filter(|(p, q)| p.to_bits() != q.to_bits())
                .count();
            if c > 0 {
                d.push((n.clone(), c));
            }
        }
        d
    }

    #[test]
    fn a_flip_changes_exactly_one_bit_of_one_element() {
        let base = tiny();
        for kind in [Corruption::FlipExponent, Corruption::FlipMantissa] {
            for seed in 0..20 {
                let (w, dmg) = corrupt(&base, kind, seed, &[]).unwrap();
                let d = count_diff(&base, &w);
                assert_eq!(d.len(), 1, "{d:?}");
                assert_eq!(d[0].1, 1);
                let (a, b) = dmg.values.unwrap();
                assert_eq!((a.to_bits() ^ b.to_bits()).count_ones(), 1);
            }
        }
    }

    #[test]
    fn corruption_is_deterministic_and_seed_dependent() {
        let base = tiny();
        let a = corrupt(&base, Corruption::FlipExponent, 1, &[]).unwrap().1;
        assert_eq!(
            a,
            corrupt(&base, Corruption::FlipExponent, 1, &[]).unwrap().1
        );
        let others: Vec<_> = (2..6)
            .map(|s| corrupt(&base, Corruption::FlipExponent, s, &[]).unwrap().1)
            .collect();
        assert!(others.iter().any(|o| o != &a));
    }

    #[test]
    fn swap_uses_evaluation_tokens() {
        let base = tiny();
        let (w, dmg) = corrupt(&base, Corruption::SwapEmbedRows, 0, &[5, 9]).unwrap();
        assert!(
            dmg.at == "rows 5 and 9" || dmg.at == "rows 9 and 5",
            "{}",
            dmg.at
        );
        assert_eq!(count_diff(&base, &w).len(), 1);
        assert!(corrupt(&base, Corruption::SwapEmbedRows, 0, &[5]).is_err());
    }
}
