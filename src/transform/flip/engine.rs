//! The flip engine: which stored bits a seeded corruption flips ([`plan`]) and flipping
//! them in a tensor's stored bytes ([`apply`]), with a record of every flip ([`Flip`]).
//!
//! It works on bytes as a file or candle's `QTensor` holds them, so a flip in a quantized
//! block changes the f16 scale or the packed nibbles themselves, never a dequantized copy.
//! Sites are drawn uniformly among the eligible bits (a uniformly random fault in memory
//! restricted to a class and region), without replacement, from the seed alone.

use super::bits::{nth_set_bit, BitMask};
use super::layout::{layout, BlockLayout};
use super::region::{glob_match, TensorClass};
use crate::flipspec::Region;
use crate::flipspec::Severity;
use crate::model::ggml_type_name;
use crate::rng::SeededRng;
use candle_core::quantized::GgmlDType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Why a corruption could not be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum FlipError {
    /// Nothing in the model is eligible: the corruption would change nothing.
    #[error("no eligible bit: bits '{bits}' in region '{region}' select no stored bit of this model ({tensors} tensor(s) in the region)")]
    NoSites {
        /// The bit class (or `custom`).
        bits: String,
        /// The region whose tensors were searched.
        region: Region,
        /// Tensors the region holds.
        tensors: usize,
    },
    /// A rate that rounds to no flip over the region's weights.
    #[error("rate {rate} per billion weights over {weights} weights rounds to no flip; use a higher rate or a count")]
    RateTooLow {
        /// Flips per billion weights.
        rate: u64,
        /// Weights in the region.
        weights: u64,
    },
    /// More flips than half the eligible bits (they are drawn without replacement).
    #[error("{flips} flips requested but only {eligible} eligible bits: at most half of them can be flipped")]
    TooMany {
        /// Flips requested.
        flips: u64,
        /// Eligible bits.
        eligible: u64,
    },
    /// A tensor of a type no model file stores (Q8_1, Q8_K).
    #[error("tensor {tensor}: storage type {dtype} has no block layout to corrupt")]
    Unsupported {
        /// Tensor name.
        tensor: String,
        /// Its type.
        dtype: &'static str,
    },
    /// A tensor whose size disagrees with its type and shape.
    #[error("tensor {tensor}: {what}")]
    Malformed {
        /// Tensor name.
        tensor: String,
        /// What disagrees.
        what: String,
    },
    /// Reading a tensor's bytes or rebuilding it failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// What a corruption reaches: eligible bits, a region, and optionally a tensor pattern
/// that replaces the region's tensors (the region then only picks the fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Bits eligible in each format.
    pub bits: BitMask,
    /// Name of the bits (a [`super::BitClass`] name, or what a test calls its own mask).
    pub bits_name: String,
    /// Which tensors, and which of their fields, may be flipped (with a tensor pattern,
    /// only the fields).
    pub region: Region,
    /// Shell pattern matched against the stored and the Hugging Face name.
    pub tensors: Option<String>,
}

impl Target {
    /// The target of a named class in a region.
    pub fn class(class: super::BitClass, region: Region) -> Target {
        Target {
            bits: class.mask(),
            bits_name: class.name().into(),
            region,
            tensors: None,
        }
    }

    pub(crate) fn selects(&self, t: &TensorMeta) -> bool {
        match &self.tensors {
            Some(p) => {
                glob_match(p, &t.name) || t.hf_name.as_deref().is_some_and(|h| glob_match(p, h))
            }
            None => t.hf_name.as_deref().map(TensorClass::of_hf) == Some(self.region.tensors()),
        }
    }
}

/// A tensor as stored, without its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMeta {
    /// Its name where it is stored (a GGUF's `blk.0.attn_q.weight`, or an HF name).
    pub name: String,
    /// Its Hugging Face name, which classifies it (`None`: an unknown tensor).
    pub hf_name: Option<String>,
    /// Storage type.
    pub dtype: GgmlDType,
    /// Elements.
    pub elems: u64,
}

/// One bit to flip: tensor (index into the planned list), block, field run, field, bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    /// Index into the tensors the plan was made from.
    pub tensor: usize,
    /// Block (element, for float types).
    pub block: u64,
    /// Field run in the block layout.
    pub run: usize,
    /// Field within the run.
    pub field: usize,
    /// Bit within the field, 0 = least significant.
    pub bit: u32,
}

/// The flips a seeded corruption makes, before any byte is touched.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Sites, sorted by tensor, block, field, bit.
    pub sites: Vec<Site>,
    /// Elements of the tensors in the region (what a rate is per).
    pub weights: u64,
    /// Bits eligible for a flip.
    pub eligible_bits: u64,
}

/// One flipped bit, with the value of its field before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flip {
    /// Tensor name as stored.
    pub tensor: String,
    /// Its storage type (`f32`, `q4_0`).
    pub dtype: String,
    /// Flat element index (float tensors; in the stored row order).
    pub element: Option<u64>,
    /// Block index (quantized tensors).
    pub block: Option<u64>,
    /// ggml's field name: `value` for a float weight, `d`, `m`, `dmin`, `qs`, `qh`, `scales` …
    pub field: String,
    /// Which field of the run (the byte of `qs`); 0 for single fields.
    pub index: u64,
    /// Bit within the field, 0 = least significant.
    pub bit: u32,
    /// Offset of the flipped byte in the tensor's data.
    pub byte: u64,
    /// Offset of the flipped byte in the file, when a file was corrupted.
    pub file_offset: Option<u64>,
    /// The field's value before (a float, or a byte as an integer).
    #[serde(with = "crate::jsonnum")]
    pub old: f64,
    /// Its value after.
    #[serde(with = "crate::jsonnum")]
    pub new: f64,
}

fn layout_of(t: &TensorMeta) -> Result<BlockLayout, FlipError> {
    let l = layout(t.dtype).ok_or_else(|| FlipError::Unsupported {
        tensor: t.name.clone(),
        dtype: ggml_type_name(t.dtype),
    })?;
    if !t.elems.is_multiple_of(l.elems as u64) {
        return Err(FlipError::Malformed {
            tensor: t.name.clone(),
            what: format!(
                "{} elements are not whole {}-element blocks",
                t.elems, l.elems
            ),
        });
    }
    Ok(l)
}

/// Eligible bits per block of a layout, and per field of each run.
fn per_block(l: &BlockLayout, target: &Target) -> (u64, Vec<u64>) {
    let per_field: Vec<u64> = l
        .fields
        .iter()
        .map(|f| {
            if target.region.reaches(f.role) {
                u64::from(target.bits.of(f.format).count_ones())
            } else {
                0
            }
        })
        .collect();
    let total = l
        .fields
        .iter()
        .zip(&per_field)
        .map(|(f, p)| f.count as u64 * p)
        .sum();
    (total, per_field)
}

/// Draws the sites of a corruption of `tensors` (in the given order) from `seed` alone.
pub fn plan(
    tensors: &[TensorMeta],
    target: &Target,
    severity: Severity,
    seed: u64,
) -> Result<Plan, FlipError> {
    let mut spans = Vec::new(); // (tensor index, first global bit, bits per block, per field)
    let (mut eligible, mut weights, mut selected) = (0u64, 0u64, 0usize);
    for (i, t) in tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| target.selects(t))
    {
        let l = layout_of(t)?;
        let (bpb, per_field) = per_block(&l, target);
        selected += 1;
        weights += t.elems;
        if bpb > 0 {
            spans.push((i, eligible, bpb, per_field, l));
            eligible += bpb * (t.elems / l.elems as u64);
        }
    }
    if eligible == 0 {
        return Err(FlipError::NoSites {
            bits: target.bits_name.clone(),
            region: target.region,
            tensors: selected,
        });
    }
    let n = severity.flips(weights)?;
    if n > eligible / 2 {
        return Err(FlipError::TooMany { flips: n, eligible });
    }
    let mut rng = SeededRng::for_stream(seed, "bit-flips");
    let mut picks = BTreeSet::new();
    while (picks.len() as u64) < n {
        picks.insert(rng.below(eligible));
    }
    let mut sites = Vec::with_capacity(picks.len());
    for g in picks {
        let k = spans.partition_point(|s| s.1 <= g) - 1;
        let (tensor, start, bpb, per_field, l) = &spans[k];
        let (block, mut r) = ((g - start) / bpb, (g - start) % bpb);
        for (run, (f, &p)) in l.fields.iter().zip(per_field).enumerate() {
            let span = f.count as u64 * p;
            if r < span {
                let bit = nth_set_bit(target.bits.of(f.format), (r % p) as u32);
                sites.push(Site {
                    tensor: *tensor,
                    block,
                    run,
                    field: (r / p) as usize,
                    bit,
                });
                break;
            }
            r -= span;
        }
    }
    Ok(Plan {
        sites,
        weights,
        eligible_bits: eligible,
    })
}

/// Flips `sites` (all of one tensor, sorted) in its stored `bytes`; returns the record of
/// each flip, the field's value read just before and just after it.
pub fn apply(t: &TensorMeta, sites: &[Site], bytes: &mut [u8]) -> Result<Vec<Flip>, FlipError> {
    let l = layout_of(t)?;
    let want = t.elems / l.elems as u64 * l.bytes as u64;
    if bytes.len() as u64 != want {
        return Err(FlipError::Malformed {
            tensor: t.name.clone(),
            what: format!(
                "{} bytes stored, {want} expected for {} {} elements",
                bytes.len(),
                t.elems,
                ggml_type_name(t.dtype)
            ),
        });
    }
    let quantized = l.elems > 1;
    let mut flips = Vec::with_capacity(sites.len());
    for s in sites {
        let f = &l.fields[s.run];
        let start = s.block as usize * l.bytes + f.offset + s.field * f.field_bytes();
        let field = start..start + f.field_bytes();
        let old = f.format.decode(&bytes[field.clone()]);
        let byte = start + (s.bit / 8) as usize;
        bytes[byte] ^= 1 << (s.bit % 8);
        let new = f.format.decode(&bytes[field]);
        flips.push(Flip {
            tensor: t.name.clone(),
            dtype: ggml_type_name(t.dtype).into(),
            element: (!quantized).then_some(s.block),
            block: quantized.then_some(s.block),
            field: f.name.into(),
            index: s.field as u64,
            bit: s.bit,
            byte: byte as u64,
            file_offset: None,
            old,
            new,
        });
    }
    Ok(flips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::flip::BitClass;

    fn meta(name: &str, dtype: GgmlDType, elems: u64) -> TensorMeta {
        TensorMeta {
            name: name.into(),
            hf_name: Some(name.into()),
            dtype,
            elems,
        }
    }

    #[test]
    fn q4_0_any_bit_hits_a_scale_msb_one_time_in_144() {
        // The arithmetic: 18 bytes = 144 bits per block, one of them the f16 d's
        // exponent MSB. Every bit is equally likely, so over many seeds the share is 1/144.
        let t = [meta(
            "model.layers.0.mlp.up_proj.weight",
            GgmlDType::Q4_0,
            32 * 4096,
        )];
        let target = Target::class(BitClass::Any, Region::Weights);
        let p = plan(&t, &target, Severity::Count(20_000), 1).unwrap();
        assert_eq!(p.eligible_bits, 144 * 4096);
        let msb = p.sites.iter().filter(|s| s.run == 0 && s.bit == 14).count();
        let expect = 20_000.0 / 144.0;
        assert!(
            (msb as f64 - expect).abs() < 4.0 * expect.sqrt(),
            "{msb} vs {expect}"
        );
    }

    #[test]
    fn classes_that_reach_nothing_are_errors_not_no_ops() {
        let t = [meta(
            "model.layers.0.mlp.up_proj.weight",
            GgmlDType::F32,
            64,
        )];
        let e = plan(
            &t,
            &Target::class(BitClass::Exponent, Region::Scales),
            Severity::Count(1),
            0,
        )
        .unwrap_err();
        assert!(matches!(e, FlipError::NoSites { tensors: 1, .. }), "{e}");
        let q = [meta(
            "model.layers.0.mlp.up_proj.weight",
            GgmlDType::Q8_0,
            64,
        )];
        assert!(matches!(
            plan(
                &q,
                &Target::class(BitClass::Mantissa, Region::Packed),
                Severity::Count(1),
                0
            ),
            Err(FlipError::NoSites { .. })
        ));
        assert!(matches!(
            plan(
                &q,
                &Target::class(BitClass::Any, Region::Mins),
                Severity::Count(1),
                0
            ),
            Err(FlipError::NoSites { .. })
        ));
        assert!(matches!(
            plan(
                &t,
                &Target::class(BitClass::Sign, Region::Weights),
                Severity::Count(33),
                0
            ),
            Err(FlipError::TooMany { .. })
        ));
    }

    #[test]
    fn a_tensor_pattern_replaces_the_regions_tensors() {
        let t = [
            meta("model.embed_tokens.weight", GgmlDType::Q8_0, 64),
            meta("model.layers.0.mlp.up_proj.weight", GgmlDType::Q8_0, 64),
        ];
        let mut target = Target::class(BitClass::ExponentMsb, Region::Scales);
        target.tensors = Some("*embed*".into());
        let p = plan(&t, &target, Severity::Count(1), 0).unwrap();
        assert_eq!((p.eligible_bits, p.sites[0].tensor), (2, 0));
    }
}
