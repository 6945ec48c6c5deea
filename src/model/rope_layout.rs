//! [`RopeLayout`]: which dimensions of a head RoPE rotates together, and the Q/K row
//! permutation that converts between the two conventions.
//!
//! The trap: Hugging Face Llama checkpoints rotate dimension `j` with `j + head_dim/2`
//! ("rotate half", GPT-NeoX style), while llama.cpp rotates `2j` with `2j + 1`
//! (interleaved). llama.cpp's `convert_hf_to_gguf.py` does not change the maths; it
//! permutes the rows of `q_proj` and `k_proj` (`permute`: reshape to
//! `(n_head, 2, head_dim/2, in)`, swap axes 1 and 2) so that interleaved RoPE on the
//! permuted rows equals rotate-half RoPE on the original ones. K uses the KV head count.
//!
//! Decision: every loader returns [`RopeLayout::Neox`] (GGUF Q/K rows are un-permuted on
//! load), so transforms and exporters see one layout. The model still honours
//! [`RopeLayout::Interleaved`] (candle's `rope_i`), which lets a test check the
//! permutation against the interleaved kernel rather than against itself.

use std::sync::Arc;

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::Tensor;

use super::error::{CandleContext, ModelError, Result};
use super::weights::Weight;

/// Which pairs of head dimensions RoPE rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RopeLayout {
    /// Hugging Face order: pairs `(j, j + head_dim/2)`.
    #[default]
    Neox,
    /// llama.cpp/GGUF order: pairs `(2j, 2j + 1)`.
    Interleaved,
}

/// For each destination row, the source row, converting Q/K rows of `heads` heads of
/// width `head_dim` into `to`'s order (`new[r] = old[perm[r]]`).
pub(crate) fn row_permutation(heads: usize, head_dim: usize, to: RopeLayout) -> Vec<usize> {
    let half = head_dim / 2;
    let mut perm = vec![0usize; heads * head_dim];
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..half {
                let neox = h * head_dim + i * half + j;
                let inter = h * head_dim + 2 * j + i;
                match to {
                    RopeLayout::Interleaved => perm[inter] = neox,
                    RopeLayout::Neox => perm[neox] = inter,
                }
            }
        }
    }
    perm
}

/// Permutes the rows of a Q or K projection into `to`'s order. Quantized tensors are
/// permuted as whole rows of blocks, which is exact because GGML blocks never span rows.
pub(crate) fn permute_rows(
    name: &str,
    w: &Weight,
    heads: usize,
    head_dim: usize,
    to: RopeLayout,
) -> Result<Weight> {
    let shape = w.shape();
    let rows = shape.first().copied().unwrap_or(0);
    if shape.len() != 2 || rows != heads * head_dim {
        return Err(ModelError::ShapeMismatch {
            name: name.to_string(),
            expected: vec![heads * head_dim, shape.get(1).copied().unwrap_or(0)],
            got: shape,
        });
    }
    let perm = row_permutation(heads, head_dim, to);
    match w {
        Weight::Float(t) => {
            let idx: Vec<u32> = perm.iter().map(|&p| p as u32).collect();
            let idx = Tensor::new(idx.as_slice(), t.device())?;
            Ok(Weight::Float(
                t.index_select(&idx, 0).ctx("permute q/k rows")?,
            ))
        }
        Weight::Quant(q) => {
            let cols = shape[1];
            let block = q.dtype().block_size();
            if !cols.is_multiple_of(block) {
                return Err(ModelError::Unsupported {
                    what: format!("row permutation of `{name}`: {cols} columns are not whole {block}-element blocks"),
                });
            }
            let row_bytes = cols / block * q.dtype().type_size();
            let data = q.data().ctx("read quantized bytes")?;
            let mut out = Vec::with_capacity(data.len());
            for &src in &perm {
                out.extend_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
            }
            let qt = qtensor_from_ggml(q.dtype(), &out, shape.clone(), &q.device())
                .ctx("rebuild permuted tensor")?;
            Ok(Weight::Quant(Arc::new(qt)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_matches_convert_hf_to_gguf() {
        // convert_hf_to_gguf.permute on rows [0..8) with one head of width 8:
        // reshape(1, 2, 4) -> swapaxes(1, 2) -> rows 0,4,1,5,2,6,3,7.
        assert_eq!(
            row_permutation(1, 8, RopeLayout::Interleaved),
            vec![0, 4, 1, 5, 2, 6, 3, 7]
        );
        let to_neox = row_permutation(2, 4, RopeLayout::Neox);
        let to_inter = row_permutation(2, 4, RopeLayout::Interleaved);
        for r in 0..8 {
            assert_eq!(to_inter[to_neox[r]], r);
        }
    }
}
