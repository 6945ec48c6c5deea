//! The learning-rate schedule and AdamW fields that the pretraining recipe
//! ([`super::Hyper`]), the SFT recipe ([`super::sft_config::SftHyper`]) and the
//! overfitting check (`OverfitSpec`) each carry, declared once with their checks and their
//! one use (`lr_at`, [`super::optim::AdamWParams`]).
//!
//! The fields stay flat in each struct — not a `#[serde(flatten)]` sub-struct — because a
//! recipe's hyper-parameters are serialized into checkpoint metadata and training-cache
//! keys (their bytes must not change), and serde refuses `deny_unknown_fields` together
//! with `flatten`.

/// Declares a struct with the fields written before `schedule`, then `lr`, `min_lr`,
/// `warmup` (and, after `schedule + adamw`, `weight_decay`, `beta1`, `beta2`, `eps`,
/// `grad_clip`), then the fields in the trailing braces; serialization keeps that order.
/// The struct must have a `steps: u64` field. It gains `lr_at(step)` and
/// `check_schedule()` (and `adamw()`, `check_adamw()`).
macro_rules! with_schedule {
    ($(#[$meta:meta])* pub struct $name:ident { $($head:tt)* } schedule { $($tail:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($head)*
            /// Peak learning rate.
            pub lr: f64,
            /// Learning rate at the last step (end of the cosine).
            pub min_lr: f64,
            /// Linear warmup steps.
            pub warmup: u64,
            $($tail)*
        }
        impl $name {
            /// The learning rate at `step` (counted from 1): warmup, then cosine.
            pub fn lr_at(&self, step: u64) -> f64 {
                $crate::train::optim::lr_at(step, self.steps, self.warmup, self.lr, self.min_lr)
            }

            /// The schedule fields' checks (`steps` at least 1 included); the message
            /// names the field.
            pub(crate) fn check_schedule(&self) -> Result<(), String> {
                $crate::train::hyper_fields::check_schedule(
                    self.steps,
                    self.lr,
                    self.min_lr,
                    self.warmup,
                )
            }
        }
    };
    ($(#[$meta:meta])* pub struct $name:ident { $($head:tt)* } schedule + adamw { $($tail:tt)* }) => {
        $crate::train::hyper_fields::with_schedule! {
            $(#[$meta])*
            pub struct $name {
                $($head)*
            } schedule {
                /// AdamW decoupled weight decay (matrices only).
                pub weight_decay: f64,
                /// AdamW β1.
                pub beta1: f64,
                /// AdamW β2.
                pub beta2: f64,
                /// AdamW ε.
                pub eps: f64,
                /// Global gradient-norm clip (0: none).
                pub grad_clip: f64,
                $($tail)*
            }
        }
        impl $name {
            /// The optimizer's parameters.
            pub fn adamw(&self) -> $crate::train::optim::AdamWParams {
                $crate::train::optim::AdamWParams {
                    beta1: self.beta1,
                    beta2: self.beta2,
                    eps: self.eps,
                    weight_decay: self.weight_decay,
                }
            }

            /// The AdamW and clipping fields' checks; the message names the field.
            pub(crate) fn check_adamw(&self) -> Result<(), String> {
                $crate::train::hyper_fields::check_adamw(
                    self.beta1,
                    self.beta2,
                    self.eps,
                    self.weight_decay,
                    self.grad_clip,
                )
            }
        }
    };
}

pub(crate) use with_schedule;

/// A field-level check's failure: the message names the field.
pub(super) fn bad(field: &str, why: String) -> Result<(), String> {
    Err(format!("field `{field}`: {why}"))
}

// Every test is written so that NaN fails it (each comparison with NaN is false).
pub(crate) fn check_schedule(steps: u64, lr: f64, min_lr: f64, warmup: u64) -> Result<(), String> {
    if steps == 0 {
        return bad("steps", "must be at least 1".into());
    }
    if !(lr.is_finite() && lr > 0.0) {
        return bad("lr", format!("{lr} is not a positive number"));
    }
    if !(min_lr >= 0.0 && min_lr <= lr) {
        return bad("min_lr", format!("{min_lr} is not in [0, lr]"));
    }
    if warmup > steps {
        return bad("warmup", format!("{warmup} exceeds steps {steps}"));
    }
    Ok(())
}

pub(crate) fn check_adamw(
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    grad_clip: f64,
) -> Result<(), String> {
    for (f, v) in [("beta1", beta1), ("beta2", beta2)] {
        if !(0.0..1.0).contains(&v) {
            return bad(f, format!("{v} is not in [0, 1)"));
        }
    }
    if !(eps.is_finite() && eps > 0.0) {
        return bad("eps", format!("{eps} is not positive"));
    }
    for (f, v) in [("weight_decay", weight_decay), ("grad_clip", grad_clip)] {
        if !(v.is_finite() && v >= 0.0) {
            return bad(f, format!("{v} is not a non-negative number"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::recipe::OverfitSpec;
    use super::super::sft_config::SftHyper;
    use super::super::Hyper;

    type Spoil<T> = fn(&mut T);

    fn sft() -> SftHyper {
        let h = Hyper::default();
        SftHyper {
            seed: h.seed,
            steps: h.steps,
            batch: h.batch,
            lr: h.lr,
            min_lr: h.min_lr,
            warmup: h.warmup,
            weight_decay: h.weight_decay,
            beta1: h.beta1,
            beta2: h.beta2,
            eps: h.eps,
            grad_clip: h.grad_clip,
        }
    }

    #[test]
    fn serialized_field_order_is_the_one_checkpoints_and_cache_keys_record() {
        // A recipe's hyper JSON is hashed into training-cache keys and written into
        // checkpoints: the order below is the one before the fields were shared.
        let json = serde_json::to_string(&Hyper::default()).unwrap();
        assert_eq!(
            json,
            "{\"seed\":20261122,\"steps\":300,\"batch\":16,\"seq_len\":128,\"lr\":0.005,\
             \"min_lr\":0.0005,\"warmup\":30,\"weight_decay\":0.1,\"beta1\":0.9,\"beta2\":0.95,\
             \"eps\":1e-8,\"grad_clip\":1.0,\"val_fraction\":0.1}"
        );
        let json = serde_json::to_string(&sft()).unwrap();
        let keys: Vec<&str> = json.split('"').skip(1).step_by(2).collect();
        let want = "seed steps batch lr min_lr warmup weight_decay beta1 beta2 eps grad_clip";
        assert_eq!(keys.join(" "), want);
    }

    #[test]
    fn every_user_refuses_a_bad_schedule_naming_the_field() {
        assert_eq!(Hyper::default().validate(), Ok(()));
        assert_eq!(sft().validate(), Ok(()));
        let bad_lr: [(&str, Spoil<Hyper>); 5] = [
            ("lr", |h| h.lr = f64::NAN),
            ("min_lr", |h| h.min_lr = h.lr * 2.0),
            ("warmup", |h| h.warmup = h.steps + 1),
            ("steps", |h| h.steps = 0),
            ("lr", |h| h.lr = f64::INFINITY),
        ];
        for (field, spoil) in bad_lr {
            let mut h = Hyper::default();
            spoil(&mut h);
            let e = h.validate().unwrap_err();
            assert!(e.contains(&format!("`{field}`")), "{e}");
            let mut s = sft();
            (s.lr, s.min_lr, s.warmup, s.steps) = (h.lr, h.min_lr, h.warmup, h.steps);
            let e = s.validate().unwrap_err();
            assert!(e.contains(&format!("`{field}`")), "{e}");
        }
        let o = OverfitSpec {
            text_bytes: 1,
            steps: 10,
            batch: 1,
            seq_len: 2,
            lr: 1e-2,
            min_lr: 1e-3,
            warmup: 2,
            seed: 1,
        };
        assert_eq!(o.check_schedule(), Ok(()));
        let e = OverfitSpec { min_lr: 1.0, ..o }
            .check_schedule()
            .unwrap_err();
        assert!(e.contains("`min_lr`"), "{e}");
    }

    #[test]
    fn every_adamw_field_is_checked_and_nan_never_passes() {
        let spoilers: [(&str, Spoil<SftHyper>); 6] = [
            ("beta1", |h| h.beta1 = 1.0),
            ("beta2", |h| h.beta2 = f64::NAN),
            ("eps", |h| h.eps = f64::INFINITY),
            ("eps", |h| h.eps = 0.0),
            ("weight_decay", |h| h.weight_decay = -0.1),
            ("grad_clip", |h| h.grad_clip = f64::NAN),
        ];
        for (field, spoil) in spoilers {
            let mut s = sft();
            spoil(&mut s);
            let e = s.validate().unwrap_err();
            assert!(e.contains(&format!("`{field}`")), "{e}");
        }
    }

    #[test]
    fn the_schedule_and_optimizer_are_read_from_the_fields() {
        let h = Hyper::default();
        assert_eq!(h.lr_at(h.warmup), h.lr);
        assert!((h.lr_at(h.steps) - h.min_lr).abs() < 1e-15);
        let p = sft().adamw();
        assert_eq!(
            (p.beta1, p.beta2, p.eps, p.weight_decay),
            (0.9, 0.95, 1e-8, 0.1)
        );
    }
}
