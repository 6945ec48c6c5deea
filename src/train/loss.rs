//! Fused next-token cross-entropy on given logits: [`cross_entropy`] (differentiable) and
//! [`row_losses`] (evaluation); the training path fuses the output projection too
//! ([`super::lm_head`]).
//!
//! Why fused: with a 16000-token vocabulary the logits of one 16 × 128 batch are 33M
//! floats. candle's `log_softmax` + `gather` spell the loss out in eight full-size
//! temporaries forward and as many backward. Here each row is read once for its
//! `log Σ e^x`, and the backward turns the logits into
//! `∂loss/∂logits = g · (softmax(x) − onehot(target))` in one pass.
//!
//! How: the value is computed eagerly; a custom op applied to the logits then only hands
//! that value over and carries the backward. Rows run in parallel, each row's arithmetic
//! is sequential, so results do not depend on the thread count.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, InplaceOp2, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::kernels::{row_lse, row_softmax_scaled};

type CResult<T> = candle_core::Result<T>;

pub(crate) fn check_targets(n: usize, v: usize, targets: &[u32]) -> CResult<()> {
    if targets.len() != n {
        candle_core::bail!(
            "cross-entropy: {n} rows of logits but {} targets",
            targets.len()
        );
    }
    if let Some(&t) = targets.iter().find(|&&t| t as usize >= v) {
        candle_core::bail!("cross-entropy: target {t} outside the vocabulary of {v}");
    }
    Ok(())
}

/// Per-row `log Σ e^x − x[target]` of `logits` `(n, vocab)` (f32 or f64, CPU), in f64.
/// A NaN anywhere in a row makes that row's loss NaN, never silently finite.
pub fn row_losses(logits: &Tensor, targets: &[u32]) -> CResult<Vec<f64>> {
    let (n, v) = logits.dims2()?;
    check_targets(n, v, targets)?;
    let logits = logits.contiguous()?;
    let (storage, layout) = logits.storage_and_layout();
    let Some((a, b)) = layout.contiguous_offsets() else {
        candle_core::bail!("cross-entropy: logits are not contiguous")
    };
    match &*storage {
        Storage::Cpu(CpuStorage::F32(data)) => Ok(data[a..b]
            .par_chunks(v)
            .zip(targets.par_iter())
            .map(|(row, &t)| match row_lse(row) {
                (_, true) => f64::NAN,
                (lse, false) => lse - f64::from(row[t as usize]),
            })
            .collect()),
        Storage::Cpu(CpuStorage::F64(data)) => Ok(data[a..b]
            .chunks(v)
            .zip(targets)
            .map(|(row, &t)| {
                if row.iter().any(|x| x.is_nan()) {
                    return f64::NAN;
                }
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                m + row.iter().map(|&x| (x - m).exp()).sum::<f64>().ln() - row[t as usize]
            })
            .collect()),
        _ => candle_core::bail!("cross-entropy: logits must be f32 or f64 on the cpu"),
    }
}

/// Per-row losses as a `(n,)` tensor of the logits' dtype.
fn loss_tensor(logits: &Tensor, targets: &[u32]) -> CResult<Tensor> {
    let l = row_losses(logits, targets)?;
    let n = l.len();
    Tensor::from_vec(l, n, logits.device())?.to_dtype(logits.dtype())
}

/// Mean cross-entropy of `logits` `(n, vocab)` against `targets`, differentiable with
/// respect to the logits. Off the CPU, candle's own ops compute the same value.
pub fn cross_entropy(logits: &Tensor, targets: &[u32]) -> CResult<Tensor> {
    let (n, v) = logits.dims2()?;
    check_targets(n, v, targets)?;
    if !logits.device().is_cpu() {
        let t = Tensor::new(targets, logits.device())?;
        return candle_nn::loss::cross_entropy(logits, &t);
    }
    let value = loss_tensor(logits, targets)?;
    let op = Precomputed {
        value: Mutex::new(Some(value)),
        targets: Arc::new(targets.to_vec()),
    };
    logits.apply_op1(op)?.mean_all()
}

fn take_value(slot: &Mutex<Option<Tensor>>, op: &str) -> CResult<(CpuStorage, Shape)> {
    let value = slot
        .lock()
        .map_err(|_| candle_core::Error::Msg(format!("{op}: poisoned")))?
        .take();
    let Some(value) = value else {
        candle_core::bail!("{op}: the forward of a precomputed loss runs once")
    };
    let shape = value.shape().clone();
    let storage = match &*value.storage_and_layout().0 {
        Storage::Cpu(s) => s.clone(),
        _ => candle_core::bail!("{op}: value is not on the cpu"),
    };
    Ok((storage, shape))
}

/// Hands over the per-row losses of [`cross_entropy`]; backward is the softmax gradient.
struct Precomputed {
    value: Mutex<Option<Tensor>>,
    targets: Arc<Vec<u32>>,
}

impl CustomOp1 for Precomputed {
    fn name(&self) -> &'static str {
        "groundtruth-cross-entropy"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> CResult<(CpuStorage, Shape)> {
        take_value(&self.value, self.name())
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> CResult<Option<Tensor>> {
        let grad = arg.detach().copy()?;
        grad.inplace_op2(
            &Tensor::stack(&[res, grad_res], 1)?,
            &SoftmaxGradInPlace {
                targets: self.targets.clone(),
            },
        )?;
        Ok(Some(grad))
    }
}

/// Rows of `g` (`v` wide) become `g_i · (softmax − onehot(t_i))`, given `(loss_i, g_i)`
/// pairs: `loss_i + x_i[t_i]` is the row's `log Σ e^x`, so no second reduction is needed.
pub(crate) fn softmax_grad_in_place_f32(g: &mut [f32], v: usize, lg: &[f32], targets: &[u32]) {
    g.par_chunks_mut(v)
        .zip(lg.par_chunks(2))
        .zip(targets.par_iter())
        .for_each(|((row, p), &t)| {
            let lse = p[0] + row[t as usize];
            row_softmax_scaled(row, lse, p[1]);
            row[t as usize] -= p[1];
        });
}

/// Turns logits into `g_i · (softmax(x_i) − onehot(t_i))`, reading `(loss_i, g_i)` pairs;
/// `loss_i + x_i[t_i]` is the row's `log Σ e^x`, so no second reduction is needed.
struct SoftmaxGradInPlace {
    targets: Arc<Vec<u32>>,
}

impl InplaceOp2 for SoftmaxGradInPlace {
    fn name(&self) -> &'static str {
        "groundtruth-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<()> {
        let (_, v) = l1.shape().dims2()?;
        let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("{}: inputs must be contiguous", self.name())
        };
        let t = &self.targets;
        match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(p)) => {
                softmax_grad_in_place_f32(&mut x[a..b], v, &p[c..d], t)
            }
            (CpuStorage::F64(x), CpuStorage::F64(p)) => {
                for ((row, lg), &tgt) in x[a..b].chunks_mut(v).zip(p[c..d].chunks(2)).zip(t.iter())
                {
                    let lse = lg[0] + row[tgt as usize];
                    for e in row.iter_mut() {
                        *e = lg[1] * (*e - lse).exp();
                    }
                    row[tgt as usize] -= lg[1];
                }
            }
            _ => candle_core::bail!(
                "{}: logits and packed gradient must both be f32 or f64",
                self.name()
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::lm_head::linear_cross_entropy;
    use candle_core::{DType, Device};

    use crate::testutil::{max_abs_diff as max_diff, seeded_var as var};

    fn scalar(t: &Tensor) -> f64 {
        t.to_dtype(DType::F64).unwrap().to_scalar().unwrap()
    }

    const TARGETS: [u32; 7] = [0, 5, 300, 17, 17, 2, 99];

    #[test]
    fn matches_candle_value_and_gradient() {
        for dtype in [DType::F32, DType::F64] {
            let x = var((7, 301), 1, 4.0, dtype);
            let ours = cross_entropy(x.as_tensor(), &TARGETS).unwrap();
            let tt = Tensor::new(&TARGETS, &Device::Cpu).unwrap();
            let theirs = candle_nn::loss::cross_entropy(x.as_tensor(), &tt).unwrap();
            assert!((scalar(&ours) - scalar(&theirs)).abs() < 1e-5, "{dtype:?}");
            let ga = ours.backward().unwrap().get(x.as_tensor()).unwrap().clone();
            let gb = theirs
                .backward()
                .unwrap()
                .get(x.as_tensor())
                .unwrap()
                .clone();
            assert!(max_diff(&ga, &gb) < 1e-7, "{dtype:?}");
        }
    }

    #[test]
    fn linear_version_matches_matmul_then_candle() {
        for dtype in [DType::F32, DType::F64] {
            let x = var((7, 12), 2, 1.0, dtype);
            let w = var((301, 12), 3, 0.5, dtype);
            let ours = linear_cross_entropy(x.as_tensor(), w.as_tensor(), &TARGETS).unwrap();
            let tt = Tensor::new(&TARGETS, &Device::Cpu).unwrap();
            let logits = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
            let theirs = candle_nn::loss::cross_entropy(&logits, &tt).unwrap();
            assert!((scalar(&ours) - scalar(&theirs)).abs() < 1e-5, "{dtype:?}");
            let (ga, gb) = (ours.backward().unwrap(), theirs.backward().unwrap());
            for v in [&x, &w] {
                assert!(
                    max_diff(
                        ga.get(v.as_tensor()).unwrap(),
                        gb.get(v.as_tensor()).unwrap()
                    ) < 1e-6,
                    "{dtype:?}"
                );
            }
        }
    }

    #[test]
    fn nan_logit_gives_nan_loss_and_bad_target_is_an_error() {
        let x = var((3, 50), 4, 1.0, DType::F32);
        let mut v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        v[77] = f32::NAN;
        let bad = Tensor::from_vec(v, (3, 50), &Device::Cpu).unwrap();
        assert!(scalar(&cross_entropy(&bad, &[1, 2, 3]).unwrap()).is_nan());
        let e = cross_entropy(x.as_tensor(), &[1, 2, 50])
            .unwrap_err()
            .to_string();
        assert!(e.contains("target 50"), "{e}");
    }
}
