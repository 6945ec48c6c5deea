//! [`TrainableLlama`]: a [`Llama`] whose weights are candle `Var`s, so that
//! `loss.backward()` yields a gradient for every parameter (its tests check that it does).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Var};

use super::error::{CandleContext, Result};
use super::layers::MatmulPath;
use super::llama::{Llama, LoadOptions};
use super::weights::{Weight, Weights};

/// A model built on trainable variables, one `Var` per HF tensor name.
pub struct TrainableLlama {
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
        let mut vars = BTreeMap::new();
        for (name, w) in &f32w.tensors {
            let var = Var::from_tensor(&w.to_tensor(device, dtype)?).ctx("create variable")?;
            vars.insert(name.clone(), var);
        }
        let opts = LoadOptions {
            matmul: MatmulPath::F32,
            device: device.clone(),
            dtype,
            autocast: None,
        };
        let model = Llama::load(&weights_over(&f32w, &vars), &opts)?;
        Ok(Self {
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
