//! Corrupting a model in memory ([`corrupt_weights`]): the stored bytes of each touched
//! tensor (candle's `QTensor` blocks as they are, or the float values) are flipped and the
//! tensor rebuilt from them, in the same storage type.

use super::engine::{apply, plan, FlipError, Target, TensorMeta};
use super::list::FlipList;
use crate::flipspec::Severity;
use crate::model::{ModelError, Weight, Weights};
use crate::transform::weight_type;
use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::{Device, Tensor};
use std::sync::Arc;

/// The tensors of `w` as the engine sees them, in name order.
pub fn tensor_metas(w: &Weights) -> Vec<TensorMeta> {
    w.tensors
        .iter()
        .map(|(n, t)| TensorMeta {
            name: n.clone(),
            hf_name: Some(n.clone()),
            dtype: weight_type(t),
            elems: t.elem_count() as u64,
        })
        .collect()
}

/// Flips the bits `target`, `severity` and `seed` select in `base`'s stored tensors.
/// Tensors nothing lands in are shared with `base`, not copied.
pub fn corrupt_weights(
    base: &Weights,
    target: &Target,
    severity: Severity,
    seed: u64,
) -> Result<(Weights, FlipList), FlipError> {
    let metas = tensor_metas(base);
    let p = plan(&metas, target, severity, seed)?;
    let mut out = base.clone();
    let mut flips = Vec::with_capacity(p.sites.len());
    for chunk in p.sites.chunk_by(|a, b| a.tensor == b.tensor) {
        let meta = &metas[chunk[0].tensor];
        let w = base.get(&meta.name)?;
        let mut bytes = w.raw_bytes()?;
        flips.extend(apply(meta, chunk, &mut bytes)?);
        out.tensors.insert(meta.name.clone(), rebuild(w, &bytes)?);
    }
    Ok((out, FlipList::new(target, severity, seed, &p, flips)))
}

/// The tensor `w` with its stored bytes replaced by `bytes` (same type and shape).
fn rebuild(w: &Weight, bytes: &[u8]) -> Result<Weight, ModelError> {
    let err = |source| ModelError::Candle {
        context: "rebuild a corrupted tensor".into(),
        source,
    };
    Ok(match w {
        Weight::Float(t) => Weight::Float(
            Tensor::from_raw_buffer(bytes, t.dtype(), t.dims(), &Device::Cpu).map_err(err)?,
        ),
        Weight::Quant(q) => Weight::Quant(Arc::new(
            qtensor_from_ggml(q.dtype(), bytes, q.shape().dims().to_vec(), &Device::Cpu)
                .map_err(err)?,
        )),
    })
}
