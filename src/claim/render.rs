//! `claims/CLAIMS.md`: the registered claims rendered for people, from the TOML.

use super::schema::{Claim, Expect};
use super::spec::ClaimSpec;
use std::fmt::Write;

/// What the page says about itself, above the claims.
const PREAMBLE: &str = "# Registered claims\n\n\
         Generated from `claims/*.toml` and the registered metric numbers of \
         `claims/metrics/*.toml` by `groundtruth claims render`; do not edit by hand \
         (a test fails when this file is stale). A claim's bound is fixed when it is registered; \
         changing it means a new claim with a new date. Its **basis** says whether the bound was \
         written before any run of it (`prior`, a prediction) or after seeing numbers it judges \
         (`observed`, a regression guard).\n";

/// Renders every claim as Markdown, grouped by file, in registration order.
pub fn claims_markdown(claims: &[ClaimSpec]) -> String {
    let mut out = String::from(PREAMBLE);
    let mut current_file = None;
    for r in claims {
        let file = shown_file(r);
        if current_file.as_deref() != Some(file.as_str()) {
            let _ = write!(out, "\n## `{file}`\n");
            current_file = Some(file);
        }
        claim_markdown(&mut out, r);
    }
    out
}

/// One claim's section: heading and statement, what falsifies it and about what, the
/// fields only some kinds have, and how it was registered.
fn claim_markdown(out: &mut String, r: &ClaimSpec) {
    // Rendered from the claim as written, so the page shows what the file says.
    let c = r.as_written();
    let expect = match c.expect {
        Expect::Hold => "holds",
        Expect::Fail => "fails (registered negative claim)",
    };
    let _ = write!(
        out,
        "\n### {} — {}\n\n{}\n\n\
             - **falsified if not:** `{}`\n\
             - **expected:** {}\n\
             - **models:** {}; **variants:** {}\n",
        c.id,
        c.kind.name(),
        c.statement.trim(),
        r.criterion(),
        expect,
        c.subjects.models.join(", "),
        c.subjects.variants.join(", "),
    );
    kind_fields(out, &c);
    let _ = write!(
        out,
        "- **registered:** {}\n- **basis:** {}\n- **rationale:** {}\n",
        c.registered,
        c.basis.describe(),
        c.rationale.trim()
    );
    if let Some(why) = &c.retired {
        let _ = writeln!(out, "- **retired (not run):** {}", why.trim());
    }
}

/// The lines of the fields only some kinds use: the training check, the comparison, the
/// storage types judged, the near-tie margin, the seeds and the runtimes.
fn kind_fields(out: &mut String, c: &Claim) {
    if let Some(check) = c.check {
        let _ = writeln!(out, "- **checks:** {}", check.name());
    }
    if let Some(cmp) = c.compare {
        let _ = writeln!(
            out,
            "- **compares:** {}",
            serde_json::to_string(&cmp)
                .unwrap_or_default()
                .trim_matches('"')
        );
    }
    if !c.stored_as.is_empty() {
        let _ = writeln!(
            out,
            "- **judges checkpoints stored as:** {}",
            c.stored_as.join(", ")
        );
    }
    if let Some(m) = c.tie_margin {
        let _ = writeln!(out, "- **near-tie margin:** {m} nats (both sides)");
    }
    if let Some(n) = c.seeds {
        let _ = writeln!(
            out,
            "- **seeds per point:** {n} (0 … {})",
            n.saturating_sub(1)
        );
    }
    if !c.runtimes.is_empty() {
        let labels: Vec<&str> = c.runtimes.iter().map(|r| r.label()).collect();
        let _ = writeln!(out, "- **runtimes:** {}", labels.join(", "));
    }
}

/// The claim's file as its heading shows it: the name, under its folder when that is not
/// `claims/` itself (`check/bands.toml`).
fn shown_file(r: &ClaimSpec) -> String {
    let name = r
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = r
        .file
        .parent()
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if parent == "claims" {
        name
    } else {
        format!("{parent}/{name}")
    }
}
