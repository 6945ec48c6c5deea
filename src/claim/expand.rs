//! Expanding selected claims into cases: claim × model × variant (× prompt).
//!
//! Expansion reads only metadata (claims, suites, the prompt set, the model registry),
//! never weights, so listing thousands of cases stays instant.

use super::kind::CaseShape;
use super::load::ClaimError;
use super::spec::ClaimSpec;
use crate::runtime::Runtime;
use crate::variant::Variant;
use std::path::Path;
use std::sync::Arc;

/// One generated test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Stable name: `kind/model/variant/scope/claim-id`, then `@runtime` off the CPU's f32
    /// (`…/RP-1@cuda`), so CPU cases keep the names they always had.
    pub name: String,
    /// The claim it tests.
    pub claim: Arc<ClaimSpec>,
    /// Model name from the registry.
    pub model: String,
    /// How the subject derives from the model.
    pub variant: Variant,
    /// The prompt id for per-prompt kinds.
    pub prompt: Option<String>,
    /// For chain kinds (`quant_order`): every variant of the claim, in its order
    /// (`variant` is the first); empty otherwise.
    pub chain: Vec<Variant>,
    /// Where the subject's forward passes run (the claim's `runtimes`; the CPU in f32 by
    /// default). A CUDA runtime means the run's GPU (`--device`).
    pub runtime: Runtime,
}

impl Case {
    /// The prompt id for per-prompt cases, the chain (`q8_0+q5_0+q4_0`) for chain cases,
    /// else `all`.
    pub fn scope(&self) -> String {
        match (&self.prompt, self.chain.is_empty()) {
            (Some(p), _) => p.clone(),
            (None, false) => self
                .chain
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("+"),
            (None, true) => "all".into(),
        }
    }
}

/// Expands claims into cases. `known_models` validates model names; `prompt_ids`
/// loads the ids of a prompt file (default `configs/prompts.toml`).
pub fn expand(
    claims: &[ClaimSpec],
    known_models: &[String],
    mut prompt_ids: impl FnMut(&str) -> Result<Vec<String>, String>,
) -> Result<Vec<Case>, ClaimError> {
    let mut cases = Vec::new();
    for c in claims {
        // A retired claim stays on record but is no longer run (schema: `retired`).
        if c.retired.is_some() {
            continue;
        }
        let rc = Arc::new(c.clone());
        let fail =
            |msg: String| ClaimError::invalid(&c.file, c.line, format!("claim '{}': {msg}", c.id));
        let shape = c.kind.claim_kind().cases();
        let prompts: Vec<Option<String>> = match shape {
            CaseShape::PerPrompt => {
                let file = c
                    .prompts
                    .as_deref()
                    .unwrap_or(crate::project::DEFAULT_PROMPTS);
                prompt_ids(file)
                    .map_err(|e| fail(format!("field 'prompts': {e}")))?
                    .into_iter()
                    .map(Some)
                    .collect()
            }
            CaseShape::PerVariant | CaseShape::PerChain => vec![None],
        };
        let heads: Vec<(Variant, Vec<Variant>)> = match (shape, c.variants.first()) {
            (CaseShape::PerChain, Some(first)) => vec![(*first, c.variants.clone())],
            (CaseShape::PerChain | CaseShape::PerPrompt | CaseShape::PerVariant, _) => {
                c.variants.iter().map(|v| (*v, vec![])).collect()
            }
        };
        for model in &c.models {
            // A registered number's model is a label of its records, not a registry model.
            let records_label = matches!(c.kind, super::Kind::MetricRepro(_));
            if !records_label && !known_models.contains(model) {
                return Err(fail(format!(
                    "field 'subjects.models': model '{model}' is not in configs/models.toml"
                )));
            }
            for (variant, chain) in &heads {
                for &runtime in &c.runtimes {
                    for p in &prompts {
                        let case = Case {
                            name: String::new(),
                            claim: rc.clone(),
                            model: model.clone(),
                            variant: *variant,
                            prompt: p.clone(),
                            chain: chain.clone(),
                            runtime,
                        };
                        let name = case_name(
                            c.kind.name(),
                            model,
                            *variant,
                            &case.scope(),
                            &c.id,
                            runtime,
                        );
                        cases.push(Case { name, ..case });
                    }
                }
            }
        }
    }
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(ClaimError::invalid(
            Path::new("claims"),
            1,
            format!("case name '{}' is generated twice", w[0]),
        ));
    }
    Ok(cases)
}

/// `kind/model/variant/scope/claim-id[@runtime]`.
pub fn case_name(
    kind: &str,
    model: &str,
    variant: Variant,
    scope: &str,
    id: &str,
    runtime: Runtime,
) -> String {
    match runtime == Runtime::CPU {
        true => format!("{kind}/{model}/{variant}/{scope}/{id}"),
        false => format!("{kind}/{model}/{variant}/{scope}/{id}@{}", runtime.label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_retired_claim_expands_to_no_case() {
        // Before: `groundtruth check` expanded claims/check/ without the suite filter, so a
        // retired claim ran again.
        let claim = |id: &str, extra: &str| {
            format!(
                "[[claim]]\nid = \"{id}\"\nkind = \"quant_drift\"\nstatement = \"s\"\nsubjects = {{ models = [\"m\"], variants = [\"q8_0\"] }}\n\
                 bound = {{ statistic = \"kl_mean\", op = \"<=\", value = 0.01 }}\nrationale = \"r\"\nregistered = \"2026-11-28\"\nbasis = \"prior\"\n{extra}\n"
            )
        };
        let text = claim("A", "") + &claim("B", "retired = \"2026-11-28: superseded\"");
        let claims = crate::claim::parse_str(&text, Path::new("x.toml")).unwrap();
        let cases = expand(&claims, &["m".to_string()], |_| Ok(vec![])).unwrap();
        let ids: Vec<&str> = cases.iter().map(|c| c.claim.id.as_str()).collect();
        assert_eq!(ids, ["A"]);
    }

    #[test]
    fn runtimes_are_a_case_dimension_and_cpu_names_do_not_change() {
        let text = "[[claim]]\nid = \"R\"\nkind = \"quant_drift\"\nstatement = \"s\"\nsubjects = { models = [\"m\"], variants = [\"q8_0\", \"q4_0\"] }\n\
                    runtimes = [\"cpu\", \"cuda\", \"cpu-bf16\"]\nbound = { statistic = \"kl_mean\", op = \"<=\", value = 0.01 }\nrationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\n";
        let claims = crate::claim::parse_str(text, Path::new("x.toml")).unwrap();
        let cases = expand(&claims, &["m".to_string()], |_| Ok(vec![])).unwrap();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "quant_drift/m/q8_0/all/R",
                "quant_drift/m/q8_0/all/R@cuda",
                "quant_drift/m/q8_0/all/R@cpu-bf16",
                "quant_drift/m/q4_0/all/R",
                "quant_drift/m/q4_0/all/R@cuda",
                "quant_drift/m/q4_0/all/R@cpu-bf16"
            ]
        );
        assert_eq!(cases[1].runtime, Runtime::parse_label("cuda").unwrap());
    }
}
