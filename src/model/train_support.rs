//! [`TrainableLlama`]: a [`Llama`] whose weights are candle `Var`s in a `VarMap`, so that
//! `loss.backward()` yields a gradient for every parameter, plus a check that it did.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::VarMap;

use super::error::{CandleContext, ModelError, Result};
use super::layers::MatmulPath;
use super::llama::{Llama, LoadOptions};
use super::weights::{Weight, Weights};

/// A model built on trainable variables, one `Var` per HF tensor name.
pub struct TrainableLlama {
    varmap: VarMap,
    vars: BTreeMap<String, Var>,
    model: Llama,
    template: Weights,
}

impl TrainableLlama {
    /// Copies `weights` (dequantized to f32) into fresh variables on `device` and builds
    /// the model on them. Tied embeddings are one variable used twice.
    pub fn new(weights: &Weights, device: &Device) -> Result<Self> {
        Self::with_dtype(weights, device, DType::F32)
    }

    /// As [`TrainableLlama::new`] with variables of `dtype` (f32, or f64 for gradient
    /// checks against finite differences).
    pub fn with_dtype(weights: &Weights, device: &Device, dtype: DType) -> Result<Self> {
        let f32w = weights.to_f32()?;
        let varmap = VarMap::new();
        let mut vars = BTreeMap::new();
        {
            let mut data = varmap.data().lock().map_err(|_| ModelError::BadInput {
                reason: "VarMap mutex poisoned".into(),
            })?;
            for (name, w) in &f32w.tensors {
                let var = Var::from_tensor(&w.to_tensor(device, dtype)?).ctx("create variable")?;
                data.insert(name.clone(), var.clone());
                vars.insert(name.clone(), var);
            }
        }
        let opts = LoadOptions {
            matmul: MatmulPath::F32,
            device: device.clone(),
            dtype,
            autocast: None,
        };
        let model = Llama::load(&weights_over(&f32w, &vars), &opts)?;
        Ok(Self {
            varmap,
            vars,
            model,
            template: f32w,
        })
    }

    /// Runs the training forward pass's matrix products in `cast` (bf16 autocast) or, with
    /// `None`, in the variables' type; see [`Llama::set_autocast`].
    pub fn set_autocast(&mut self, cast: Option<DType>) {
        self.model.set_autocast(cast);
    }

    /// The model; its weights are the variables, so optimizer steps show up here.
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// The variables, for `candle_nn::AdamW::new(varmap.all_vars(), ..)` or saving.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The variables by HF name.
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.vars
    }

    /// [`Weights`] whose tensors are the variables themselves (not copies): a model
    /// loaded from them is differentiable with respect to the variables.
    #[cfg(test)]
    pub(crate) fn var_weights(&self) -> Weights {
        weights_over(&self.template, &self.vars)
    }

    /// A detached copy of the current values on the CPU, for saving or evaluation.
    pub fn snapshot(&self) -> Result<Weights> {
        let mut w = self.template.clone();
        for (name, var) in &self.vars {
            let t = var.as_detached_tensor();
            // `to_device` onto the CPU shares a CPU tensor's storage: copy those instead.
            let t = if t.device().is_cpu() {
                t.copy()?
            } else {
                t.to_device(&Device::Cpu)?
            };
            w.tensors.insert(name.clone(), Weight::Float(t));
        }
        Ok(w)
    }

    /// L2 norm of each parameter's gradient, `None` where `backward` produced none.
    pub fn gradient_norms(&self, grads: &GradStore) -> Result<BTreeMap<String, Option<f32>>> {
        let mut out = BTreeMap::new();
        for (name, var) in &self.vars {
            let norm = match grads.get(var.as_tensor()) {
                None => None,
                Some(g) => Some(g.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?),
            };
            out.insert(name.clone(), norm);
        }
        Ok(out)
    }

    /// Fails naming every parameter whose gradient is missing, zero or not finite.
    pub fn check_gradients(&self, grads: &GradStore) -> Result<()> {
        let names: Vec<String> = self
            .gradient_norms(grads)?
            .into_iter()
            .filter(|(_, n)| !matches!(n, Some(x) if x.is_finite() && *x > 0.0))
            .map(|(name, _)| name)
            .collect();
        if names.is_empty() {
            Ok(())
        } else {
            Err(ModelError::NoGradient { names })
        }
    }
}

/// `template` with every tensor replaced by the variable of the same name.
fn weights_over(template: &Weights, vars: &BTreeMap<String, Var>) -> Weights {
    let mut w = template.clone();
    for (name, var) in vars {
        w.tensors
            .insert(name.clone(), Weight::Float(var.as_tensor().clone()));
    }
    w
}

/// Mean next-token cross-entropy of `model` on `tokens` (`(batch, seq)`, `seq >= 2`),
/// through the differentiable forward pass.
pub fn lm_loss(model: &Llama, tokens: &Tensor) -> Result<Tensor> {
    let (b, t) = tokens.dims2()?;
    if t < 2 {
        return Err(ModelError::BadInput {
            reason: format!("need at least 2 tokens per row for a loss, got {t}"),
        });
    }
    let logits = model.forward_train(tokens)?;
    let v = logits.dim(D::Minus1)?;
    let inputs = logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), v))?;
    let targets = tokens.narrow(1, 1, t - 1)?.reshape(b * (t - 1))?;
    candle_nn::loss::cross_entropy(&inputs, &targets.to_dtype(candle_core::DType::U32)?)
        .ctx("cross-entropy")
}
