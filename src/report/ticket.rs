//! Failure tickets: Markdown a person can paste into an issue tracker.

use super::environment::Environment;
use super::record::{CaseRecord, Report};
use crate::outcome::{fmt_num, Comparison, Evidence, Outcome};
use std::fmt::Write;

/// `token_parity/m/v/p/ID` → `token_parity__m__v__p__ID.md` (flat, no path tricks).
pub fn ticket_file_name(case: &str) -> String {
    let safe: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.md", safe.replace('/', "__"))
}

/// How a falsified case went wrong: the bound failed, or a registered negative claim held.
fn verdict(ev: &Evidence) -> &'static str {
    if ev.bound_holds() {
        "held but was registered to fail"
    } else {
        "falsified"
    }
}

/// The stable identity of a failure: claim × model × variant (with its runtime off the
/// CPU's f32, so a CPU case keeps its fingerprint) × root cause (the
/// falsification criterion and which way it failed), hashed. Numbers, prompts, paths and
/// versions are left out, so a rerun that fails the same way has the same fingerprint and
/// an issue tracker that already carries it needs no second ticket. `None` unless failed.
pub fn fingerprint(case: &CaseRecord) -> Option<String> {
    let Outcome::Fail(ev) = &case.outcome else {
        return None;
    };
    let key = [
        case.claim_id.as_str(),
        case.model.as_str(),
        case.subject_label().as_str(),
        case.criterion.as_str(),
        verdict(ev),
    ]
    .join("\u{0}");
    Some(format!(
        "gt-{}",
        &crate::fsutil::sha256_hex(key.as_bytes())[..16]
    ))
}

/// The ticket of a failed case; `None` for every other outcome.
pub fn ticket_markdown(case: &CaseRecord, env: &Environment) -> Option<String> {
    let Outcome::Fail(ev) = &case.outcome else {
        return None;
    };
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", ticket_title(case, ev));
    let _ = writeln!(
        md,
        "**Claim {}** ({}), registered at `{}`:\n\n> {}\n",
        case.claim_id,
        case.kind,
        case.registered_at,
        case.statement.trim()
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| case | `{}` |", case.name);
    let _ = writeln!(
        md,
        "| fingerprint | `{}` |",
        fingerprint(case).unwrap_or_default()
    );
    let _ = writeln!(md, "| basis | {} |", case.basis.describe());
    let _ = writeln!(
        md,
        "| falsification criterion | `{}` must {} |",
        case.criterion,
        if ev.expect == crate::claim::Expect::Hold {
            "hold"
        } else {
            "not hold"
        }
    );
    let _ = writeln!(md, "| observed | **{}** |", ev.summary());
    let _ = writeln!(md, "| numerical path | {} |", ev.numerical_path);
    for (name, value) in &ev.also {
        let _ = writeln!(md, "| {name} | {} |", fmt_num(*value));
    }
    if let Some(cmp) = &ev.comparison {
        comparison_section(&mut md, cmp);
    }
    if let Some(list) = &ev.flips {
        super::flips::flips_section(&mut md, list);
    }
    environment_section(&mut md, env);
    let _ = writeln!(md, "\n## Files\n\n| file | sha256 |\n|---|---|");
    for f in &case.files {
        let _ = writeln!(md, "| `{}` | `{}` |", f.path, f.sha256);
    }
    let _ = writeln!(md, "\n## Reproduce\n\n```sh\n{}\n```", case.reproduce);
    Some(md)
}

fn ticket_title(case: &CaseRecord, ev: &Evidence) -> String {
    format!(
        "{}: claim {} {} on {}/{}",
        case.kind,
        case.claim_id,
        verdict(ev),
        case.model,
        case.subject_label()
    )
}

fn comparison_section(md: &mut String, cmp: &Comparison) {
    let _ = writeln!(
        md,
        "\n## Reference vs subject\n\nPrompt: `{}`\n",
        escape(&cmp.prompt)
    );
    let d = &cmp.divergence;
    match d.position {
        None => {
            let _ = writeln!(md, "Greedy tokens are identical.");
        }
        Some(p) => {
            let tok = |v: &[u32]| {
                v.get(p)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "(end)".into())
            };
            let margin = |m: Option<f64>, why: &str| {
                m.map(|m| format!("{} nats", fmt_num(m)))
                    .unwrap_or_else(|| format!("not measured ({why})"))
            };
            let _ = writeln!(
                md,
                "First divergence at generated position **{p}**: reference token {}, subject token {}. \
                 Margins there (a side's log-probability of its own token minus that of the other's): \
                 reference {}, subject {}; near-tie: {}.\n",
                tok(&cmp.reference_tokens),
                tok(&cmp.subject_tokens),
                margin(d.reference_margin, "the subject's token is not in the reference's top-k"),
                margin(d.subject_margin, "no subject distribution there"),
                match (d.near_tie, d.tie_margin) {
                    (Some(true), Some(eps)) => format!("yes (both margins within the registered {} nats)", fmt_num(eps)),
                    (Some(false), Some(eps)) => format!("no (the registered margin is {} nats)", fmt_num(eps)),
                    (Some(_), None) | (None, _) => "not judged (no near-tie rule)".to_string(),
                }
            );
        }
    }
    if cmp.reference_text == cmp.subject_text {
        let _ = writeln!(
            md,
            "Texts are identical (`{}`): the difference is in token ids only.\n",
            escape(&cmp.reference_text)
        );
    } else {
        let _ = writeln!(
            md,
            "Text:\n\n```diff\n{}```\n",
            unified(
                &lines_of_text(&cmp.reference_text),
                &lines_of_text(&cmp.subject_text)
            )
        );
    }
    let ids = |v: &[u32], pieces: &[String]| {
        v.iter()
            .enumerate()
            .map(|(i, t)| match pieces.get(i) {
                Some(p) => format!("{t} \"{}\"\n", escape(p)),
                None => format!("{t}\n"),
            })
            .collect::<String>()
    };
    let _ = writeln!(
        md,
        "Tokens (one per line: id and its text):\n\n```diff\n{}```",
        unified(
            &ids(&cmp.reference_tokens, &cmp.reference_pieces),
            &ids(&cmp.subject_tokens, &cmp.subject_pieces)
        )
    );
}

/// Each line of a text shown with visible escapes, so whitespace differences show in a diff.
fn lines_of_text(t: &str) -> String {
    t.split_inclusive('\n')
        .map(|l| format!("{}\n", escape(l)))
        .collect()
}

fn escape(s: &str) -> String {
    s.escape_debug().to_string()
}

fn unified(a: &str, b: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(3)
        .header("reference", "subject")
        .to_string()
}

fn environment_section(md: &mut String, env: &Environment) {
    let _ = writeln!(
        md,
        "\n## Environment\n\n- groundtruth {}\n- {}\n- {}\n- {} — {}, {} threads",
        env.groundtruth, env.crates, env.rustc, env.platform, env.cpu, env.threads
    );
}

/// One ticket of a report: the failed cases that share a fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// Its cases' fingerprint: kind, subject, runtime and root cause, hashed (two runs that
    /// fail the same way share it).
    pub fingerprint: String,
    /// One line: kind, claim, verdict, subject.
    pub title: String,
    /// The claim kind (the issue's label).
    pub kind: String,
    /// The Markdown body.
    pub markdown: String,
}

/// All tickets of a report, one per fingerprint (the same claim failing the same way on
/// several prompts of the same subject is one bug).
pub fn dedup_tickets(report: &Report) -> Vec<Ticket> {
    let mut groups: Vec<(String, Vec<&CaseRecord>)> = Vec::new();
    for c in report.cases.iter() {
        let Some(key) = fingerprint(c) else { continue };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    groups
        .into_iter()
        .filter_map(|(fingerprint, cases)| {
            let Outcome::Fail(ev) = &cases[0].outcome else {
                return None;
            };
            let mut md = ticket_markdown(cases[0], &report.environment)?;
            if cases.len() > 1 {
                let _ = writeln!(
                    md,
                    "\n## Also failing with the same claim and subject ({} more)\n",
                    cases.len() - 1
                );
                for c in &cases[1..] {
                    let ev: Option<&Evidence> = c.outcome.evidence();
                    let _ = writeln!(
                        md,
                        "- `{}`: {}",
                        c.name,
                        ev.map(|e| e.summary()).unwrap_or_default()
                    );
                }
            }
            Some(Ticket {
                title: ticket_title(cases[0], ev),
                kind: cases[0].kind.clone(),
                fingerprint,
                markdown: md,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::claim::{Expect, Op};
    use crate::fsutil::FileHash;
    use crate::stats::Divergence;
    use crate::stats::Statistic;

    pub(crate) fn env() -> Environment {
        Environment {
            groundtruth: "0.1.0".into(),
            crates: "candle-core 0.11.1".into(),
            rustc: "rustc 1.95.0".into(),
            platform: "linux/x86_64".into(),
            cpu: "Test CPU".into(),
            threads: 2,
        }
    }

    pub(crate) fn failed_case() -> CaseRecord {
        CaseRecord {
            name: "greedy_parity/smollm2-135m/base/capital/GP-1".into(),
            claim_id: "GP-1".into(),
            kind: "greedy_parity".into(),
            statement: "Greedy decoding reproduces llama.cpp's continuation".into(),
            criterion: "greedy_match >= 1".into(),
            registered_at: "claims/parity.toml:3".into(),
            basis: crate::claim::Basis::Prior,
            model: "smollm2-135m".into(),
            variant: "base".into(),
            runtime: "cpu".into(),
            scope: "capital".into(),
            outcome: Outcome::Fail(Evidence {
                statistic: Statistic::GreedyMatch,
                observed: 0.0,
                op: Op::Ge,
                bound: 1.0,
                expect: Expect::Hold,
                n: 3,
                interval: None,
                also: vec![("kl_mean".into(), 0.25)],
                comparison: Some(Comparison {
                    prompt: "The capital of France is".into(),
                    reference_text: " Paris.\n".into(),
                    reference_tokens: vec![7042, 30, 198],
                    subject_text: " Lyon.\n".into(),
                    subject_tokens: vec![9999, 30, 198],
                    reference_pieces: vec![" Paris".into(), ".".into(), "\n".into()],
                    subject_pieces: vec![" Lyon".into(), ".".into(), "\n".into()],
                    divergence: Divergence { position: Some(0), reference_margin: Some(2.75), subject_margin: Some(1.5), tie_margin: Some(0.8), near_tie: Some(false) },
                }),
                numerical_path: "candle f32 (dequantized q4_1), cpu".into(),
                flips: None,
            }),
            files: vec![FileHash { path: "oracles/smollm2-135m-instruct/q4_1.json".into(), sha256: "ab".repeat(32) }],
            seconds: 1.0,
            reproduce: "GROUNDTRUTH_SUITE=ci cargo test --release --test claims -- --exact 'greedy_parity/smollm2-135m/base/capital/GP-1'".into(),
        }
    }

    #[test]
    fn ticket_snapshot() {
        insta::assert_snapshot!(ticket_markdown(&failed_case(), &env()).unwrap());
    }

    #[test]
    fn passing_cases_have_no_ticket() {
        let mut c = failed_case();
        c.outcome = Outcome::Skip(crate::outcome::SkipReason::NoDevice {
            device: "cuda".into(),
        });
        assert!(ticket_markdown(&c, &env()).is_none());
    }

    #[test]
    fn file_names_are_flat() {
        assert_eq!(ticket_file_name("a/b c/../d"), "a__b_c__..__d.md");
    }

    #[test]
    fn dedup_groups_by_claim_and_subject() {
        let a = failed_case();
        let mut b = failed_case();
        b.name = "greedy_parity/smollm2-135m/base/pi/GP-1".into();
        let mut c = failed_case();
        c.variant = "q8_0".into();
        let r = Report {
            format: crate::report::REPORT_FORMAT.into(),
            suite: "ci".into(),
            seed: 0,
            environment: env(),
            run: "t".into(),
            planned: 3,
            partial: false,
            cases: vec![a, b, c],
        };
        let t = dedup_tickets(&r);
        assert_eq!(t.len(), 2);
        assert!(t[0].markdown.contains("1 more") && t[0].markdown.contains("/pi/GP-1"));
        assert!(t[0].markdown.contains(&t[0].fingerprint) && t[0].fingerprint != t[1].fingerprint);
        assert_eq!(
            t[0].title,
            "greedy_parity: claim GP-1 falsified on smollm2-135m/base"
        );
    }

    #[test]
    fn fingerprints_are_stable_across_numbers_and_differ_across_subjects() {
        let a = failed_case();
        let fp = fingerprint(&a).unwrap();
        assert!(
            fp.starts_with("gt-")
                && fp.len() == 19
                && fp[3..].chars().all(|c| c.is_ascii_hexdigit()),
            "{fp}"
        );
        // Another prompt, other numbers, another machine: the same root cause.
        let mut b = failed_case();
        b.name = "greedy_parity/smollm2-135m/base/pi/GP-1".into();
        b.seconds = 9.0;
        b.files.clear();
        if let Outcome::Fail(ev) = &mut b.outcome {
            ev.observed = 0.5;
            ev.also.clear();
        }
        assert_eq!(fingerprint(&b).unwrap(), fp);
        for edit in [
            (|c: &mut CaseRecord| c.claim_id = "GP-2".into()) as fn(&mut CaseRecord),
            |c| c.model = "tiny-seeded".into(),
            |c| c.variant = "q8_0".into(),
            |c| c.runtime = "cuda".into(),
            |c| c.criterion = "greedy_match >= 0.5".into(),
        ] {
            let mut c = failed_case();
            edit(&mut c);
            assert_ne!(fingerprint(&c).unwrap(), fp);
        }
        let mut pass = failed_case();
        if let Outcome::Fail(ev) = pass.outcome.clone() {
            pass.outcome = Outcome::Pass(ev);
        }
        assert!(fingerprint(&pass).is_none());
    }
}
