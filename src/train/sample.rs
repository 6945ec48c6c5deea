//! [`sample`]: seeded temperature sampling through the KV cache, reproducible because every
//! draw comes from the harness's own [`SeededRng`] and the probabilities are summed in a
//! fixed order.

use candle_core::{Device, Tensor};

use super::error::{Ctx, TrainError};
use crate::model::{KvCache, Llama};
use crate::rng::SeededRng;

/// Index drawn from `softmax(logits / temperature)` with the uniform `u` in `[0, 1)`: the
/// first id whose cumulative probability (f64, in id order) exceeds `u`.
pub fn draw(logits: &[f32], temperature: f64, u: f64) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let w: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / temperature).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    for (i, x) in w.iter().enumerate() {
        acc += x / total;
        if u < acc {
            return i as u32;
        }
    }
    // Rounding can leave the running sum a hair below 1: the last id with weight takes it.
    w.iter().rposition(|&x| x > 0.0).unwrap_or(0) as u32
}

/// A uniform f64 in `[0, 1)` from the top 53 bits (every value exact).
pub fn uniform_f64(rng: &mut SeededRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `n` tokens continuing `prompt`, each drawn at `temperature` with `rng`.
pub fn sample(
    model: &Llama,
    prompt: &[u32],
    n: usize,
    temperature: f64,
    rng: &mut SeededRng,
) -> Result<Vec<u32>, TrainError> {
    if prompt.is_empty() {
        return Err(TrainError::Tokenizer(
            "sampling needs a non-empty prompt".into(),
        ));
    }
    let mut cache = KvCache::new(model.config());
    let x = Tensor::new(prompt, &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .ctx("prompt")?;
    let out = model.forward(&x, Some(&mut cache))?;
    let mut last: Vec<f32> = out
        .squeeze(0)
        .and_then(|t| t.get(prompt.len() - 1))
        .and_then(|t| t.to_vec1())
        .ctx("logits")?;
    let mut tokens = Vec::with_capacity(n);
    while tokens.len() < n {
        let next = draw(&last, temperature, uniform_f64(rng));
        tokens.push(next);
        if tokens.len() == n {
            break;
        }
        let x = Tensor::new(&[next], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .ctx("token")?;
        last = model
            .forward(&x, Some(&mut cache))?
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .ctx("logits")?;
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_follows_the_distribution_edges() {
        let l = [0.0f32, 0.0, f32::NEG_INFINITY, 0.0];
        assert_eq!(draw(&l, 1.0, 0.0), 0);
        assert_eq!(draw(&l, 1.0, 0.34), 1);
        assert_eq!(draw(&l, 1.0, 0.67), 3);
        assert_eq!(draw(&l, 1.0, 0.999_999_999_999), 3);
        // A low temperature concentrates on the maximum.
        assert_eq!(draw(&[1.0, 2.0, 1.5], 0.01, 0.9), 1);
    }
}
