//! SFT examples and the loss on the completion only.
//!
//! An example is a prompt's tokens followed by its completion's (the trace and the end
//! token). Rows of a batch are right-padded (causal attention never lets a position see
//! the padding after it), and the loss is the mean next-token cross-entropy over the
//! positions whose *target* is a completion token: prompt tokens and padding are context,
//! never targets. The hidden states of those positions are gathered before the fused
//! output projection + cross-entropy, so the gradient flows through the gather
//! ([`masked_loss`]; `grad_check_loss_on` checks it against finite differences).

use candle_core::{Device, Tensor};

use super::error::{Ctx, TrainError};
use super::lm_head::linear_cross_entropy;
use super::loss::row_losses;
use crate::model::Llama;
use crate::problems::Problem;
use crate::tokenizer::TextTokenizer;

/// One training or evaluation sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Prompt tokens, then completion tokens.
    pub tokens: Vec<u32>,
    /// How many of `tokens` are the prompt (at least 1; the rest, at least 1, are targets).
    pub prompt_len: usize,
}

impl Example {
    /// `problem`'s prompt and its trace + `end` (tokenized apart, so the boundary is exact).
    pub fn of(
        problem: &Problem,
        tok: &dyn TextTokenizer,
        tags: &crate::metrics::Tags,
        end: u32,
    ) -> Result<Example, TrainError> {
        let enc = |t: &str| {
            tok.encode(t)
                .map_err(|e| TrainError::Tokenizer(e.to_string()))
        };
        let mut tokens = enc(&problem.prompt())?;
        let prompt_len = tokens.len();
        tokens.extend(enc(&problem.completion(tags))?);
        tokens.push(end);
        match prompt_len {
            0 => Err(TrainError::Spec(format!(
                "problem {}: the prompt tokenizes to nothing",
                problem.id
            ))),
            _ => Ok(Example { tokens, prompt_len }),
        }
    }
}

/// A padded batch: inputs `(rows, cols)` and the flat input positions whose next token is
/// a completion token, with those tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// Row-major inputs, padded with `pad`.
    pub inputs: Vec<u32>,
    /// Examples in the batch.
    pub rows: usize,
    /// Columns (the longest example's length − 1).
    pub cols: usize,
    /// `row · cols + j` for each position `j` whose target `tokens[j + 1]` is in the completion.
    pub positions: Vec<u32>,
    /// Those targets.
    pub targets: Vec<u32>,
}

/// Pads `examples` into one batch and lists the completion targets.
pub fn mask(examples: &[Example], pad: u32) -> Masked {
    let cols = examples
        .iter()
        .map(|e| e.tokens.len())
        .max()
        .unwrap_or(1)
        .saturating_sub(1)
        .max(1);
    let mut m = Masked {
        inputs: Vec::with_capacity(examples.len() * cols),
        rows: examples.len(),
        cols,
        positions: Vec::new(),
        targets: Vec::new(),
    };
    for (r, e) in examples.iter().enumerate() {
        for j in 0..cols {
            m.inputs.push(e.tokens.get(j).copied().unwrap_or(pad));
            if j + 1 < e.tokens.len() && j + 1 >= e.prompt_len {
                m.positions.push((r * cols + j) as u32);
                m.targets.push(e.tokens[j + 1]);
            }
        }
    }
    m
}

/// Mean cross-entropy over the completion targets of `examples`, differentiable.
pub fn masked_loss(model: &Llama, examples: &[Example], pad: u32) -> Result<Tensor, TrainError> {
    let m = mask(examples, pad);
    if m.targets.is_empty() {
        return Err(TrainError::Spec(
            "an SFT batch with no completion token to learn".into(),
        ));
    }
    let dev = model.device();
    let x = Tensor::from_vec(m.inputs, (m.rows, m.cols), dev).ctx("sft inputs")?;
    let (h, w) = model.forward_train_hidden(&x)?;
    let d = h.dim(2).ctx("hidden")?;
    let at = Tensor::from_vec(m.positions, m.targets.len(), dev).ctx("positions")?;
    let picked = h
        .reshape((m.rows * m.cols, d))
        .and_then(|h| h.index_select(&at, 0))
        .ctx("gather completion positions")?;
    linear_cross_entropy(&picked, &w, &m.targets).ctx("sft loss")
}

/// Mean cross-entropy over every completion target of `examples` (token-weighted, summed
/// in order in f64), `batch` examples per forward pass on the fast inference path.
pub fn masked_eval_loss(
    model: &Llama,
    examples: &[Example],
    pad: u32,
    batch: usize,
) -> Result<f64, TrainError> {
    let (mut sum, mut n) = (0f64, 0usize);
    for chunk in examples.chunks(batch.max(1)) {
        let m = mask(chunk, pad);
        let x = Tensor::from_vec(m.inputs, (m.rows, m.cols), model.device()).ctx("eval inputs")?;
        let logits = model.forward(&x, None)?;
        let v = logits.dim(2).ctx("logits")?;
        let at = Tensor::from_vec(m.positions, m.targets.len(), &Device::Cpu).ctx("positions")?;
        let rows = logits
            .reshape((m.rows * m.cols, v))
            .and_then(|l| l.to_device(&Device::Cpu))
            .and_then(|l| l.index_select(&at, 0))
            .ctx("eval logits")?;
        for l in row_losses(&rows, &m.targets).ctx("eval loss")? {
            sum += l;
            n += 1;
        }
    }
    match n {
        0 => Err(TrainError::Spec("no completion token to evaluate".into())),
        _ => Ok(sum / n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_completion_targets_are_listed() {
        let a = Example {
            tokens: vec![1, 2, 3, 4, 5],
            prompt_len: 3,
        };
        let b = Example {
            tokens: vec![6, 7, 8],
            prompt_len: 1,
        };
        let m = mask(&[a, b], 0);
        assert_eq!((m.rows, m.cols), (2, 4));
        assert_eq!(m.inputs, [1, 2, 3, 4, 6, 7, 8, 0]);
        // a: targets 4 (input pos 2) and 5 (pos 3); b: targets 7 (pos 0) and 8 (pos 1).
        assert_eq!(m.positions, [2, 3, 4, 5]);
        assert_eq!(m.targets, [4, 5, 7, 8]);
    }
}
