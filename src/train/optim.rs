//! [`AdamW`] with its state in plain vectors (so a checkpoint can store and restore it
//! exactly), global-norm gradient clipping, and the warmup + cosine [`lr_at`] schedule.
//! Off the CPU the moments live on the parameters' device between steps (copying both
//! across the bus twice per step would cost more than the update) and [`AdamW::sync`]
//! brings the plain vectors up to date before a checkpoint is written.
//!
//! The update is PyTorch's `torch.optim.AdamW` (decoupled weight decay applied first,
//! bias-corrected moments), on the CPU as one fused in-place pass per parameter: candle's
//! `AdamW` spends ten full-size temporaries per parameter and keeps its moments private.
//! Weight decay applies to matrices only, not to RMSNorm gains (the usual split: decaying a
//! gain pulls it towards zero, which is not towards a simpler model).

use std::collections::BTreeMap;

use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Storage, Tensor, Var};
use rayon::prelude::*;

use super::error::{Ctx, TrainError};

/// AdamW hyper-parameters (PyTorch names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to `√v̂`.
    pub eps: f64,
    /// Decoupled weight decay (matrices only).
    pub weight_decay: f64,
}

impl AdamWParams {
    /// β1 0.9, β2 0.95, ε 1e-8 (the usual small-LM settings, also the recipes' defaults)
    /// with `weight_decay`: for the runs that have no recipe (benchmarks, sanity checks).
    pub fn with_decay(weight_decay: f64) -> Self {
        AdamWParams {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay,
        }
    }
}

/// Warmup + cosine: `lr · s / warmup` for steps `s <= warmup`, then a half cosine from `lr`
/// down to `min_lr` at `steps` (steps count from 1).
pub fn lr_at(step: u64, steps: u64, warmup: u64, lr: f64, min_lr: f64) -> f64 {
    if step <= warmup && warmup > 0 {
        return lr * step as f64 / warmup as f64;
    }
    let span = steps.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup.min(step)) as f64 / span).min(1.0);
    min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// One parameter's moments.
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    /// First moment (mean of gradients).
    pub m: Vec<f32>,
    /// Second moment (mean of squared gradients).
    pub v: Vec<f32>,
}

/// The optimizer: moments per parameter name and the number of steps taken.
#[derive(Debug, Clone)]
pub struct AdamW {
    /// Hyper-parameters.
    pub params: AdamWParams,
    /// Moments by parameter name (behind the device copies until [`AdamW::sync`]).
    pub state: BTreeMap<String, Moments>,
    /// Steps taken (the `t` of the bias correction).
    pub t: u64,
    /// `(m, v)` of parameters that live off the CPU, kept on their device.
    resident: BTreeMap<String, (Tensor, Tensor)>,
    /// Whether `resident` holds steps that `state` does not.
    stale: bool,
    /// Whether CPU parameters take the fused kernel (tests turn it off to run the device
    /// path on the CPU).
    cpu_kernel: bool,
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    /// The factor the gradients were scaled by (1 when not clipped).
    pub clip_scale: f64,
}

impl AdamW {
    /// Zero moments for `vars`.
    pub fn new(vars: &BTreeMap<String, Var>, params: AdamWParams) -> Self {
        let state = vars
            .iter()
            .map(|(n, v)| {
                let k = v.elem_count();
                (
                    n.clone(),
                    Moments {
                        m: vec![0.0; k],
                        v: vec![0.0; k],
                    },
                )
            })
            .collect();
        Self::restore(params, state, 0)
    }

    /// An optimizer with `state` after `t` steps (a checkpoint's).
    pub fn restore(params: AdamWParams, state: BTreeMap<String, Moments>, t: u64) -> Self {
        Self {
            params,
            state,
            t,
            resident: BTreeMap::new(),
            stale: false,
            cpu_kernel: true,
        }
    }

    /// Copies the moments kept on a device into [`AdamW::state`].
    pub fn sync(&mut self) -> Result<(), TrainError> {
        if !self.stale {
            return Ok(());
        }
        for (name, (m, v)) in &self.resident {
            let host = |t: &Tensor| t.flatten_all().and_then(|t| t.to_vec1::<f32>()).ctx(name);
            self.state.insert(
                name.clone(),
                Moments {
                    m: host(m)?,
                    v: host(v)?,
                },
            );
        }
        self.stale = false;
        Ok(())
    }

    /// Whether [`AdamW::state`] is current (false after a device step until [`AdamW::sync`]).
    pub fn is_synced(&self) -> bool {
        !self.stale
    }

    /// Clips the gradients of `vars` to global norm `clip` (0 disables), then updates every
    /// variable in place with learning rate `lr`. A parameter without a gradient, or a
    /// non-finite gradient norm, is an error: a silently frozen or exploding parameter is
    /// the fault this trainer exists to catch.
    pub fn step(
        &mut self,
        vars: &BTreeMap<String, Var>,
        grads: &candle_core::backprop::GradStore,
        lr: f64,
        clip: f64,
    ) -> Result<StepInfo, TrainError> {
        let mut gs = Vec::with_capacity(vars.len());
        let mut sq = 0f64;
        for (name, var) in vars {
            let g = grads
                .get(var.as_tensor())
                .ok_or_else(|| TrainError::Diverged {
                    step: self.t + 1,
                    what: format!("no gradient reached `{name}`"),
                })?
                .contiguous()
                .ctx("contiguous gradient")?;
            sq += sum_sq(&g)?;
            gs.push(g);
        }
        let grad_norm = sq.sqrt();
        if !grad_norm.is_finite() {
            return Err(TrainError::Diverged {
                step: self.t + 1,
                what: format!("gradient norm {grad_norm}"),
            });
        }
        // PyTorch's clip_grad_norm_: scale by clip / (norm + 1e-6) when the norm exceeds it.
        let clip_scale = if clip > 0.0 && grad_norm > clip {
            clip / (grad_norm + 1e-6)
        } else {
            1.0
        };
        self.t += 1;
        let p = self.params;
        let bc1 = 1.0 - p.beta1.powi(self.t as i32);
        let bc2 = 1.0 - p.beta2.powi(self.t as i32);
        for ((name, var), g) in vars.iter().zip(&gs) {
            let decay = if var.rank() >= 2 { p.weight_decay } else { 0.0 };
            let u = Update {
                lr,
                decay,
                p,
                bc1,
                bc2,
                clip_scale,
            };
            let missing = || TrainError::Diverged {
                step: self.t,
                what: format!("optimizer has no state for `{name}`"),
            };
            if var.device().is_cpu() && self.cpu_kernel {
                let mom = self.state.get_mut(name).ok_or_else(missing)?;
                let k = Kernel {
                    u,
                    mom: std::sync::Mutex::new(mom),
                };
                var.as_tensor().inplace_op2(g, &k).ctx(name)?;
            } else {
                let (m, v) = match self.resident.remove(name) {
                    Some(mv) => mv,
                    None => {
                        let mom = self.state.get(name).ok_or_else(missing)?;
                        let up =
                            |x: &[f32]| Tensor::from_slice(x, var.shape(), var.device()).ctx(name);
                        (up(&mom.m)?, up(&mom.v)?)
                    }
                };
                self.stale = true;
                let mv = u.on_device(var, g, m, v).ctx(name)?;
                self.resident.insert(name.clone(), mv);
            }
        }
        Ok(StepInfo {
            grad_norm,
            clip_scale,
        })
    }
}

/// `Σ g²` in f64, in element order.
fn sum_sq(g: &Tensor) -> Result<f64, TrainError> {
    if !g.device().is_cpu() {
        let s = g
            .to_dtype(DType::F64)
            .and_then(|t| t.sqr())
            .and_then(|t| t.sum_all())
            .and_then(|t| t.to_scalar::<f64>());
        return s.ctx("gradient norm");
    }
    let (st, layout) = g.storage_and_layout();
    let (a, b) = layout
        .contiguous_offsets()
        .ok_or_else(|| TrainError::Diverged {
            step: 0,
            what: "gradient is not contiguous".into(),
        })?;
    match &*st {
        Storage::Cpu(CpuStorage::F32(d)) => {
            Ok(d[a..b].iter().map(|&x| f64::from(x) * f64::from(x)).sum())
        }
        _ => Err(TrainError::Diverged {
            step: 0,
            what: "gradient is not f32 on the cpu".into(),
        }),
    }
}

/// One parameter's update scalars.
#[derive(Debug, Clone, Copy)]
struct Update {
    lr: f64,
    decay: f64,
    p: AdamWParams,
    bc1: f64,
    bc2: f64,
    clip_scale: f64,
}

/// One parameter's fused update on the CPU.
struct Kernel<'a> {
    u: Update,
    mom: std::sync::Mutex<&'a mut Moments>,
}

/// Elements per parallel chunk: enough work per task, and a fixed split so the result
/// never depends on the thread count (each element's arithmetic is independent anyway).
const CHUNK: usize = 1 << 14;

impl InplaceOp2 for Kernel<'_> {
    fn name(&self) -> &'static str {
        "groundtruth-adamw"
    }

    fn cpu_fwd(
        &self,
        w: &mut CpuStorage,
        lw: &Layout,
        g: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((a, b)), Some((c, d))) = (lw.contiguous_offsets(), lg.contiguous_offsets())
        else {
            candle_core::bail!("adamw: weight and gradient must be contiguous")
        };
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (w, g) else {
            candle_core::bail!("adamw: weight and gradient must be f32")
        };
        let mut guard = self
            .mom
            .lock()
            .map_err(|_| candle_core::Error::Msg("adamw: poisoned".into()))?;
        let mom: &mut Moments = &mut guard;
        let (w, g) = (&mut w[a..b], &g[c..d]);
        if w.len() != mom.m.len() || g.len() != w.len() {
            candle_core::bail!(
                "adamw: {} weights, {} gradients, {} moments",
                w.len(),
                g.len(),
                mom.m.len()
            );
        }
        // Scalars rounded once to f32, as PyTorch's f32 kernels hold them.
        let u = self.u;
        let keep = (1.0 - u.lr * u.decay) as f32;
        let (b1, b2) = (u.p.beta1 as f32, u.p.beta2 as f32);
        let (ob1, ob2) = ((1.0 - u.p.beta1) as f32, (1.0 - u.p.beta2) as f32);
        let step = (u.lr / u.bc1) as f32;
        let sbc2 = u.bc2.sqrt() as f32;
        let eps = u.p.eps as f32;
        let cs = u.clip_scale as f32;
        w.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(mom.m.par_chunks_mut(CHUNK))
            .zip(mom.v.par_chunks_mut(CHUNK))
            .for_each(|(((w, g), m), v)| {
                for i in 0..w.len() {
                    let gi = g[i] * cs;
                    m[i] = b1 * m[i] + ob1 * gi;
                    v[i] = b2 * v[i] + ob2 * gi * gi;
                    w[i] = w[i] * keep - step * m[i] / (v[i].sqrt() / sbc2 + eps);
                }
            });
        Ok(())
    }
}

impl Update {
    /// The same update with tensor ops, for devices without the fused kernel: returns the
    /// new moments, which stay on the device.
    fn on_device(
        &self,
        var: &Var,
        g: &Tensor,
        m: Tensor,
        v: Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let g = (g * self.clip_scale)?;
        let m = ((m * self.p.beta1)? + (&g * (1.0 - self.p.beta1))?)?;
        let v = ((v * self.p.beta2)? + (g.sqr()? * (1.0 - self.p.beta2))?)?;
        let denom = ((v.sqrt()? / self.bc2.sqrt())? + self.p.eps)?;
        let w = ((var.as_tensor() * (1.0 - self.lr * self.decay))?
            - ((&m / denom)? * (self.lr / self.bc1))?)?;
        var.set(&w)?;
        Ok((m, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        assert_eq!(lr_at(1, 100, 10, 1.0, 0.1), 0.1);
        assert_eq!(lr_at(10, 100, 10, 1.0, 0.1), 1.0);
        assert!((lr_at(55, 100, 10, 1.0, 0.1) - 0.55).abs() < 1e-12);
        assert!((lr_at(100, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!(lr_at(60, 100, 10, 1.0, 0.1) < lr_at(40, 100, 10, 1.0, 0.1));
    }

    /// The update against PyTorch's AdamW formula written out in f64 for two steps.
    #[test]
    fn matches_the_adamw_formula_and_clips() {
        let w0 = [0.5f32, -1.0, 2.0, 0.0];
        let var =
            Var::from_tensor(&Tensor::new(&[[0.5f32, -1.0], [2.0, 0.0]], &Device::Cpu).unwrap())
                .unwrap();
        let vars = BTreeMap::from([("w".to_string(), var.clone())]);
        let p = AdamWParams {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = AdamW::new(&vars, p);
        let (mut w, mut m, mut v) = (w0.map(f64::from), [0f64; 4], [0f64; 4]);
        for t in 1..=2 {
            // loss = Σ (3 w)², gradient 18 w; norm large, so it is clipped to 1.
            let loss = (var.as_tensor() * 3.0)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            let g: Vec<f64> = w.iter().map(|x| 18.0 * x).collect();
            let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            let info = opt.step(&vars, &grads, 0.01, 1.0).unwrap();
            assert!((info.grad_norm - norm).abs() < 1e-4 * norm);
            let s = 1.0 / (norm + 1e-6);
            for i in 0..4 {
                let gi = g[i] * s;
                w[i] *= 1.0 - 0.01 * 0.1;
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.95 * v[i] + 0.05 * gi * gi;
                let (mh, vh) = (
                    m[i] / (1.0 - 0.9f64.powi(t)),
                    v[i] / (1.0 - 0.95f64.powi(t)),
                );
                w[i] -= 0.01 * mh / (vh.sqrt() + 1e-8);
            }
            let got: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for i in 0..4 {
                assert!(
                    (f64::from(got[i]) - w[i]).abs() < 1e-6,
                    "step {t} elem {i}: {} vs {}",
                    got[i],
                    w[i]
                );
            }
        }
        assert_eq!(opt.t, 2);
    }

    /// The device path (tensor ops, moments kept as tensors, synced on demand) against the
    /// fused CPU kernel: the same update up to f32 rounding, and a state that is refused
    /// as stale until synced.
    #[test]
    fn the_device_path_matches_the_fused_kernel() {
        let p = AdamWParams {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let init = [[0.5f32, -1.0, 0.25], [2.0, 0.0, -0.75]];
        let run = |fused: bool| {
            let var = Var::from_tensor(&Tensor::new(&init, &Device::Cpu).unwrap()).unwrap();
            let vars = BTreeMap::from([("w".to_string(), var.clone())]);
            let mut opt = AdamW::new(&vars, p);
            opt.cpu_kernel = fused;
            for step in 0..3 {
                let loss = (var.as_tensor() * (3.0 + step as f64))
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap();
                opt.step(&vars, &loss.backward().unwrap(), 0.01, 1.0)
                    .unwrap();
            }
            assert_eq!(opt.is_synced(), fused);
            opt.sync().unwrap();
            assert!(opt.is_synced());
            let w: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            (w, opt.state["w"].clone())
        };
        let (fused, fused_mom) = run(true);
        let (tensor, tensor_mom) = run(false);
        let close = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-6 * (1.0 + x.abs()))
        };
        assert!(close(&fused, &tensor), "{fused:?} vs {tensor:?}");
        assert!(close(&fused_mom.m, &tensor_mom.m) && close(&fused_mom.v, &tensor_mom.v));
        assert_ne!(
            tensor_mom.m,
            vec![0.0; 6],
            "sync must bring the moments back"
        );
    }

    #[test]
    fn a_missing_gradient_is_named() {
        let a = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let b = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let vars = BTreeMap::from([("a".to_string(), a.clone()), ("b".to_string(), b)]);
        let mut opt = AdamW::new(
            &vars,
            AdamWParams {
                beta1: 0.9,
                beta2: 0.99,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        let grads = a.as_tensor().sum_all().unwrap().backward().unwrap();
        let e = opt.step(&vars, &grads, 0.1, 0.0).unwrap_err().to_string();
        assert!(e.contains("`b`"), "{e}");
    }
}
