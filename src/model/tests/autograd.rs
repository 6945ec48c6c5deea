//! The hand-differentiated kernels of `model::autograd` against the elementary candle ops
//! they replace: same values, same gradients, f32 and f64.

use candle_core::{DType, Device, Tensor, Var, D};

use crate::model::autograd::{rms_norm, rope, softmax_last};
use crate::model::RopeLayout;

fn var(shape: &[usize], seed: u64, dtype: DType) -> Var {
    crate::testutil::seeded_var(shape, seed, 1.5, dtype)
}

use crate::testutil::max_abs_diff as max_diff;

/// Value and every input gradient of `ours` and `reference` under a seeded random
/// weighting of the outputs (so no gradient is trivially symmetric).
fn agree(inputs: &[&Var], ours: impl Fn() -> Tensor, reference: impl Fn() -> Tensor, tol: f64) {
    let (a, b) = (ours(), reference());
    assert!(
        max_diff(&a, &b) < tol,
        "values differ by {}",
        max_diff(&a, &b)
    );
    let weight = var(a.dims(), 99, a.dtype());
    let ga = (a * weight.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gb = (b * weight.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (i, v) in inputs.iter().enumerate() {
        let d = max_diff(
            ga.get(v.as_tensor()).unwrap(),
            gb.get(v.as_tensor()).unwrap(),
        );
        assert!(d < tol, "input {i}: gradients differ by {d}");
    }
}

#[test]
fn rms_norm_matches_elementary_ops() {
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let x = var(&[2, 3, 8], 1, dtype);
        let w = var(&[8], 2, dtype);
        agree(
            &[&x, &w],
            || rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap(),
            || {
                let ms =
                    (x.as_tensor().sqr().unwrap().sum_keepdim(D::Minus1).unwrap() / 8.0).unwrap();
                x.as_tensor()
                    .broadcast_div(&(ms + 1e-5).unwrap().sqrt().unwrap())
                    .unwrap()
                    .broadcast_mul(w.as_tensor())
                    .unwrap()
            },
            tol,
        );
    }
}

#[test]
fn softmax_matches_elementary_ops_with_a_causal_mask() {
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-6)] {
        let x = var(&[2, 2, 5, 5], 3, dtype);
        let mask: Vec<f32> = (0..25)
            .map(|k| {
                if k % 5 > k / 5 {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (5, 5), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let s = || x.as_tensor().broadcast_add(&mask).unwrap();
        agree(
            &[&x],
            || softmax_last(&s()).unwrap(),
            || {
                let e = s()
                    .broadcast_sub(&s().max_keepdim(D::Minus1).unwrap().detach())
                    .unwrap()
                    .exp()
                    .unwrap();
                e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap()
            },
            tol,
        );
    }
}

#[test]
fn rope_matches_elementary_ops_in_both_layouts() {
    for layout in [RopeLayout::Neox, RopeLayout::Interleaved] {
        let x = var(&[1, 2, 3, 8], 4, DType::F64);
        let ang: Vec<f64> = (0..12).map(|k| 0.3 * k as f64).collect();
        let cos = Tensor::from_vec(
            ang.iter().map(|a| a.cos()).collect::<Vec<_>>(),
            (3, 4),
            &Device::Cpu,
        )
        .unwrap();
        let sin = Tensor::from_vec(
            ang.iter().map(|a| a.sin()).collect::<Vec<_>>(),
            (3, 4),
            &Device::Cpu,
        )
        .unwrap();
        agree(
            &[&x],
            || rope(x.as_tensor(), &cos, &sin, layout).unwrap(),
            || {
                let xs = x.as_tensor();
                match layout {
                    RopeLayout::Neox => {
                        let c = Tensor::cat(&[&cos, &cos], 1).unwrap();
                        let s = Tensor::cat(&[&sin, &sin], 1).unwrap();
                        let rotated = Tensor::cat(
                            &[
                                &xs.narrow(3, 4, 4).unwrap().neg().unwrap(),
                                &xs.narrow(3, 0, 4).unwrap(),
                            ],
                            3,
                        )
                        .unwrap();
                        (xs.broadcast_mul(&c).unwrap() + rotated.broadcast_mul(&s).unwrap())
                            .unwrap()
                    }
                    RopeLayout::Interleaved => {
                        let p = xs.reshape((1, 2, 3, 4, 2)).unwrap();
                        let (x0, x1) = (p.narrow(4, 0, 1).unwrap(), p.narrow(4, 1, 1).unwrap());
                        let (c, s) = (cos.unsqueeze(2).unwrap(), sin.unsqueeze(2).unwrap());
                        let y0 = (x0.broadcast_mul(&c).unwrap() - x1.broadcast_mul(&s).unwrap())
                            .unwrap();
                        let y1 = (x0.broadcast_mul(&s).unwrap() + x1.broadcast_mul(&c).unwrap())
                            .unwrap();
                        Tensor::cat(&[&y0, &y1], 4)
                            .unwrap()
                            .reshape((1, 2, 3, 8))
                            .unwrap()
                    }
                }
            },
            1e-12,
        );
    }
}
