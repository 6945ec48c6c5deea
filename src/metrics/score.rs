//! Scoring one completion: structural fidelity (SF), the answer, semantic correctness (SC)
//! and theater (SF ∧ ¬SC), exactly as `configs/metrics.toml` describes them.

use serde::Serialize;

use super::config::{AnswerRule, MetricsConfig};

/// A structural rule a completion can break. A record may break several; rules that need
/// a well-formed skeleton (order, blocks, answer) are only judged when the tags before
/// them hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Some tag does not occur.
    MissingTag,
    /// Some tag occurs more than once.
    DuplicatedTag,
    /// Each tag occurs once, but not in the order thought-open, thought-close,
    /// solution-open, solution-close.
    WrongOrder,
    /// The thought block is empty after trimming (judged when the tags are in order).
    EmptyThought,
    /// The solution block is empty after trimming (judged when the tags are in order).
    EmptySolution,
    /// The answer rule finds no answer in the solution block (judged when the tags are in order).
    NoAnswer,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 6] = [
        Rule::MissingTag,
        Rule::DuplicatedTag,
        Rule::WrongOrder,
        Rule::EmptyThought,
        Rule::EmptySolution,
        Rule::NoAnswer,
    ];

    /// The rule's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::MissingTag => "missing_tag",
            Rule::DuplicatedTag => "duplicated_tag",
            Rule::WrongOrder => "wrong_order",
            Rule::EmptyThought => "empty_thought",
            Rule::EmptySolution => "empty_solution",
            Rule::NoAnswer => "no_answer",
        }
    }
}

/// The verdict on one completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Structural fidelity.
    pub sf: bool,
    /// Semantic correctness.
    pub sc: bool,
    /// The rules broken (empty exactly when `sf`).
    pub broken: Vec<Rule>,
    /// The answer found (in the solution block when `sf`, else in the whole completion).
    pub answer: Option<String>,
}

impl Score {
    /// Well-formed and wrong.
    pub fn theater(&self) -> bool {
        self.sf && !self.sc
    }
}

/// Scores `completion` against `reference` under `cfg`.
pub fn score(completion: &str, reference: &str, cfg: &MetricsConfig) -> Score {
    let (broken, solution) = structure(completion, cfg);
    let sf = broken.is_empty();
    let answer = match (sf, solution) {
        (true, Some(s)) => extract_answer(s, cfg.answer_rule),
        _ => extract_answer(completion, cfg.answer_rule),
    };
    let sc = answer
        .as_deref()
        .is_some_and(|a| answers_equal(a, reference, cfg.tolerance));
    Score {
        sf,
        sc,
        broken,
        answer,
    }
}

/// The broken rules, and the solution block's text when the tags are in order.
fn structure<'a>(text: &'a str, cfg: &MetricsConfig) -> (Vec<Rule>, Option<&'a str>) {
    let tags = cfg.tags.in_order();
    let counts = tags.map(|t| text.matches(t).count());
    let mut broken = Vec::new();
    if counts.contains(&0) {
        broken.push(Rule::MissingTag);
    }
    if counts.iter().any(|&c| c > 1) {
        broken.push(Rule::DuplicatedTag);
    }
    if !broken.is_empty() {
        return (broken, None);
    }
    // Each tag occurs exactly once: `find` is its position.
    let at = tags.map(|t| text.find(t).unwrap_or(0));
    if !at.windows(2).all(|w| w[0] < w[1]) {
        return (vec![Rule::WrongOrder], None);
    }
    let thought = &text[at[0] + tags[0].len()..at[1]];
    let solution = &text[at[2] + tags[2].len()..at[3]];
    if thought.trim().is_empty() {
        broken.push(Rule::EmptyThought);
    }
    if solution.trim().is_empty() {
        broken.push(Rule::EmptySolution);
    }
    if extract_answer(solution, cfg.answer_rule).is_none() {
        broken.push(Rule::NoAnswer);
    }
    (broken, Some(solution))
}

/// The answer in `text` under `rule`, trimmed; `None` when the rule finds nothing (an
/// empty `\boxed{}` is a box holding no answer: it does not fall back to a number).
pub fn extract_answer(text: &str, rule: AnswerRule) -> Option<String> {
    let boxed = || last_boxed(text).map(|b| b.trim().to_string());
    let number = || last_number(text).map(str::to_string);
    let found = match rule {
        AnswerRule::BoxedElseLastNumber => match boxed() {
            Some(b) => Some(b),
            None => number(),
        },
        AnswerRule::Boxed => boxed(),
        AnswerRule::LastNumber => number(),
    };
    found.filter(|a| !a.is_empty())
}

/// The content of the last `\boxed{…}` whose braces balance (nested braces kept).
fn last_boxed(text: &str) -> Option<&str> {
    const OPEN: &str = "\\boxed{";
    let mut best = None;
    let mut from = 0;
    while let Some(rel) = text[from..].find(OPEN) {
        let start = from + rel + OPEN.len();
        let mut depth = 1usize;
        for (i, c) in text[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                best = Some(&text[start..start + i]);
                break;
            }
        }
        from = start;
    }
    best
}

/// The last match of `-?\d+(\.\d+)?` (ASCII digits), scanning left to right as a regex
/// engine does (leftmost, longest, non-overlapping).
fn last_number(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let first_digit = if b[i] == b'-' { i + 1 } else { i };
        if first_digit < b.len() && b[first_digit].is_ascii_digit() {
            let mut end = digits(first_digit);
            if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit() {
                end = digits(end + 1);
            }
            last = Some(&text[start..end]);
            i = end;
        } else {
            i += 1;
        }
    }
    last
}

/// A finite number, written as the answer rule's numbers are (`-?\d+(\.\d+)?`, optionally
/// surrounded by whitespace); `inf`, `1e5` and `0x10` are text, not numbers.
fn as_number(s: &str) -> Option<f64> {
    let t = s.trim();
    (last_number(t) == Some(t))
        .then(|| t.parse().ok())
        .flatten()
}

/// Equal numerically within `tolerance` when both parse as numbers, else equal after
/// trimming and case-folding.
pub fn answers_equal(answer: &str, reference: &str, tolerance: f64) -> bool {
    match (as_number(answer), as_number(reference)) {
        (Some(a), Some(r)) => (a - r).abs() <= tolerance,
        _ => answer.trim().to_lowercase() == reference.trim().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MetricsConfig {
        MetricsConfig::default()
    }

    fn trace(thought: &str, solution: &str) -> String {
        format!("<|begin_of_thought|>{thought}<|end_of_thought|><|begin_of_solution|>{solution}<|end_of_solution|>")
    }

    #[test]
    fn answers() {
        use AnswerRule::*;
        assert_eq!(
            extract_answer("x 3 then \\boxed{12} and 7", BoxedElseLastNumber).as_deref(),
            Some("12")
        );
        assert_eq!(
            extract_answer("\\boxed{1} \\boxed{ \\frac{1}{2} }", BoxedElseLastNumber).as_deref(),
            Some("\\frac{1}{2}")
        );
        assert_eq!(
            extract_answer("is 4, then -3.25.", BoxedElseLastNumber).as_deref(),
            Some("-3.25")
        );
        assert_eq!(extract_answer("\\boxed{} 5", BoxedElseLastNumber), None);
        assert_eq!(
            extract_answer("\\boxed{5 unclosed 6", BoxedElseLastNumber).as_deref(),
            Some("6")
        );
        assert_eq!(extract_answer("12.", LastNumber).as_deref(), Some("12"));
        assert_eq!(extract_answer("3-4", LastNumber).as_deref(), Some("-4"));
        assert_eq!(extract_answer("1.2.3", LastNumber).as_deref(), Some("3"));
        assert_eq!(extract_answer("no digits", BoxedElseLastNumber), None);
        assert_eq!(extract_answer("7 only", Boxed), None);
    }

    #[test]
    fn equality() {
        assert!(answers_equal("12", "12.0000001", 1e-6));
        assert!(!answers_equal("12", "12.01", 1e-6));
        assert!(answers_equal(" Paris ", "paris", 1e-6));
        assert!(!answers_equal("inf", "1e400", 1e-6));
        assert!(!answers_equal("1e1", "10", 1e-6));
    }

    #[test]
    fn each_rule_alone() {
        let c = cfg();
        let good = score(&trace("2 + 3 = 5", "\\boxed{5}"), "5", &c);
        assert!(good.sf && good.sc && !good.theater() && good.broken.is_empty());
        let wrong = score(&trace("2 + 3 = 6", "\\boxed{6}"), "5", &c);
        assert!(wrong.sf && !wrong.sc && wrong.theater());
        let cases = [
            (
                trace("x", "5").replace("<|end_of_thought|>", ""),
                vec![Rule::MissingTag],
            ),
            (trace("x<|end_of_thought|>", "5"), vec![Rule::DuplicatedTag]),
            (
                "<|begin_of_solution|>5<|end_of_solution|><|begin_of_thought|>x<|end_of_thought|>"
                    .to_string(),
                vec![Rule::WrongOrder],
            ),
            (trace(" \n", "5"), vec![Rule::EmptyThought]),
            (trace("x", "  "), vec![Rule::EmptySolution, Rule::NoAnswer]),
            (trace("x", "five"), vec![Rule::NoAnswer]),
            (
                trace("x", "five").replace("<|end_of_solution|>", "") + "<|begin_of_thought|>",
                vec![Rule::MissingTag, Rule::DuplicatedTag],
            ),
        ];
        for (text, want) in cases {
            let s = score(&text, "5", &c);
            assert_eq!(s.broken, want, "{text}");
            assert!(!s.sf && !s.theater());
        }
    }

    #[test]
    fn answer_comes_from_the_solution_only_when_well_formed() {
        let c = cfg();
        // Well-formed: the 9 in the thought is not the answer.
        let s = score(&trace("9", "\\boxed{4}"), "9", &c);
        assert_eq!(s.answer.as_deref(), Some("4"));
        assert!(!s.sc);
        // Broken: the whole completion is searched, and SC can hold without SF.
        let s = score("the answer is 9", "9", &c);
        assert!(!s.sf && s.sc && s.answer.as_deref() == Some("9"));
    }
}
