//! Regions: which tensors and which fields of their blocks a corruption reaches
//! ([`Region`]), and how a tensor name is classified ([`TensorClass`]).

use super::layout::Role;
use crate::flipspec::Region;
use serde::Serialize;

/// What a tensor is, by its Hugging Face name (GGUF names are mapped first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TensorClass {
    /// A matrix every forward pass reads in full: a block's projection or an untied
    /// `lm_head` (the legacy `flip-exp` picks among the projections too).
    Matrix,
    /// The token embedding (read one row per input token; in full as a tied output head).
    Embedding,
    /// An RMSNorm gain vector.
    Norm,
    /// Anything else a file holds (`rope_freqs`, unknown tensors): no region reaches it.
    Other,
}

impl TensorClass {
    /// Classifies a Hugging Face tensor name.
    pub fn of_hf(name: &str) -> TensorClass {
        match name {
            "model.embed_tokens.weight" => TensorClass::Embedding,
            "lm_head.weight" => TensorClass::Matrix,
            "model.norm.weight" => TensorClass::Norm,
            n if n.starts_with("model.layers.") && n.ends_with("_proj.weight") => {
                TensorClass::Matrix
            }
            n if n.starts_with("model.layers.") && n.ends_with("layernorm.weight") => {
                TensorClass::Norm
            }
            _ => TensorClass::Other,
        }
    }
}

impl Region {
    /// The tensors it reaches (unless a tensor pattern replaces them).
    pub fn tensors(self) -> TensorClass {
        match self {
            Region::Weights | Region::Scales | Region::Mins | Region::Packed => TensorClass::Matrix,
            Region::Embedding => TensorClass::Embedding,
            Region::Norm => TensorClass::Norm,
        }
    }

    /// Whether it reaches fields of `role`.
    pub fn reaches(self, role: Role) -> bool {
        match self {
            Region::Weights | Region::Embedding | Region::Norm => true,
            Region::Scales => matches!(role, Role::Scale | Role::SubScale),
            Region::Mins => role == Role::Min,
            Region::Packed => role == Role::Packed,
        }
    }
}

/// Whether `name` matches a shell-style pattern (`*` any run, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matcher with one backtrack point: linear in practice, never exponential.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified() {
        assert_eq!(
            TensorClass::of_hf("model.layers.3.self_attn.q_proj.weight"),
            TensorClass::Matrix
        );
        assert_eq!(
            TensorClass::of_hf("model.layers.0.mlp.down_proj.weight"),
            TensorClass::Matrix
        );
        assert_eq!(
            TensorClass::of_hf("model.layers.0.input_layernorm.weight"),
            TensorClass::Norm
        );
        assert_eq!(
            TensorClass::of_hf("model.layers.0.post_attention_layernorm.weight"),
            TensorClass::Norm
        );
        assert_eq!(
            TensorClass::of_hf("model.embed_tokens.weight"),
            TensorClass::Embedding
        );
        assert_eq!(TensorClass::of_hf("lm_head.weight"), TensorClass::Matrix);
        assert_eq!(TensorClass::of_hf("rope_freqs.weight"), TensorClass::Other);
    }

    #[test]
    fn globs() {
        assert!(glob_match("blk.*.attn_q.weight", "blk.12.attn_q.weight"));
        assert!(!glob_match("blk.*.attn_q.weight", "blk.12.attn_k.weight"));
        assert!(glob_match("*", ""));
        assert!(glob_match("token_embd?weight", "token_embd.weight"));
        assert!(glob_match("*mlp*", "model.layers.0.mlp.up_proj.weight"));
        assert!(!glob_match("a*b", "acbx"));
    }
}
