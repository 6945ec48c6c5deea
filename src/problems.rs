//! Arithmetic problems with step-by-step traces in the tag format: what SFT teaches and
//! what generation is scored on.
//!
//! A level-`L` problem applies `L` operations (+, −, ×) to `L + 1` small integers, left
//! to right with the grouping written out: `((7 + 5) * 3) - 4`. Its trace has one line per
//! step (`7 + 5 = 12`) in the thought block and `\boxed{answer}` in the solution block.
//!
//! Train and held-out are disjoint by construction: a keyed hash of the expression under
//! `split_seed` assigns every possible problem to one split, and a split's generator
//! rejects the other's problems, so no held-out problem is ever trained on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::metrics::Tags;
use crate::rng::SeededRng;

/// Which side of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Trained on.
    Train,
    /// Never trained on; generation and metrics use these.
    HeldOut,
}

impl Split {
    /// Name in ids and streams.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::HeldOut => "heldout",
        }
    }
}

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
}

impl Op {
    const ALL: [Op; 3] = [Op::Add, Op::Sub, Op::Mul];

    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
        }
    }

    fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
        }
    }
}

/// The problem space and its split (`[problems]` of `configs/sft.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemSpace {
    /// Operands are drawn from `1..=max_operand`.
    pub max_operand: u32,
    /// Share of all problems (by keyed hash) held out, in percent (1..=99).
    pub heldout_percent: u32,
    /// Key of the split hash.
    pub split_seed: u64,
    /// Highest difficulty level (operations per problem).
    pub max_level: u8,
}

impl ProblemSpace {
    /// Field-level checks; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=99).contains(&self.max_operand) {
            return Err(format!(
                "field `max_operand`: {} is not in 1..=99",
                self.max_operand
            ));
        }
        if !(1..=99).contains(&self.heldout_percent) {
            return Err(format!(
                "field `heldout_percent`: {} is not in 1..=99",
                self.heldout_percent
            ));
        }
        if !(1..=6).contains(&self.max_level) {
            return Err(format!(
                "field `max_level`: {} is not in 1..=6",
                self.max_level
            ));
        }
        Ok(())
    }

    /// The side of the split `expression` belongs to.
    pub fn split_of(&self, expression: &str) -> Split {
        let h = SeededRng::for_stream(self.split_seed, expression).next_u64();
        if h % 100 < u64::from(self.heldout_percent) {
            Split::HeldOut
        } else {
            Split::Train
        }
    }

    /// A problem of a level drawn uniformly from `levels`, on either side of the split.
    fn draw(&self, levels: &[u8], rng: &mut SeededRng) -> Problem {
        let level = levels[rng.below(levels.len() as u64) as usize];
        let operand = |rng: &mut SeededRng| 1 + rng.below(u64::from(self.max_operand)) as i64;
        let first = operand(rng);
        let rest = (0..level)
            .map(|_| (Op::ALL[rng.below(3) as usize], operand(rng)))
            .collect();
        Problem {
            id: String::new(),
            level,
            first,
            rest,
        }
    }

    /// Checks `levels` against the space.
    fn check_levels(&self, levels: &[u8]) -> Result<(), String> {
        if levels.is_empty() {
            return Err("no levels asked for".into());
        }
        match levels.iter().find(|&&l| l == 0 || l > self.max_level) {
            Some(l) => Err(format!("level {l} is not in 1..={}", self.max_level)),
            None => Ok(()),
        }
    }

    /// `n` distinct problems of `split`, levels drawn uniformly from `levels`, from the
    /// stream `seed` (ids `{split}-{seed}-{index}`). An error when the split holds fewer
    /// than `n` distinct problems of those levels (or they are too rare to find).
    pub fn problems(
        &self,
        split: Split,
        levels: &[u8],
        n: usize,
        seed: u64,
    ) -> Result<Vec<Problem>, String> {
        self.check_levels(levels)?;
        let mut rng = SeededRng::for_stream(seed, &format!("problems/{}", split.name()));
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(n);
        let budget = 1000 * n.max(1);
        for _ in 0..budget {
            if out.len() == n {
                break;
            }
            let mut p = self.draw(levels, &mut rng);
            let e = p.expression();
            if self.split_of(&e) != split || !seen.insert(e) {
                continue;
            }
            p.id = format!("{}-{seed}-{:05}", split.name(), out.len());
            out.push(p);
        }
        if out.len() < n {
            return Err(format!("only {} distinct {} problems of levels {levels:?} found in {budget} draws; {n} asked for", out.len(), split.name()));
        }
        Ok(out)
    }

    /// Training example `i` of step `step` under `seed`: a train-split problem, repeats
    /// allowed (an SFT batch is a function of seed and step only, as in pretraining).
    pub fn train_example(
        &self,
        levels: &[u8],
        seed: u64,
        step: u64,
        i: usize,
    ) -> Result<Problem, String> {
        self.check_levels(levels)?;
        let mut rng = SeededRng::for_stream(seed, &format!("sft/{step}/{i}"));
        for _ in 0..10_000 {
            let p = self.draw(levels, &mut rng);
            if self.split_of(&p.expression()) == Split::Train {
                return Ok(Problem {
                    id: format!("train-{seed}-{step}-{i}"),
                    ..p
                });
            }
        }
        Err(format!(
            "no train problem of levels {levels:?} in 10000 draws"
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Unique within a generated set.
    pub id: String,
    /// Operations.
    pub level: u8,
    /// The first operand.
    pub first: i64,
    /// Each operation with its right operand, applied left to right.
    pub rest: Vec<(Op, i64)>,
}

impl Problem {
    /// `((a + b) * c) - d`: grouping written out, so no precedence rule is needed.
    pub fn expression(&self) -> String {
        let mut e = self.first.to_string();
        for (i, (op, b)) in self.rest.iter().enumerate() {
            e = match i {
                0 => format!("{e} {} {b}", op.symbol()),
                _ => format!("({e}) {} {b}", op.symbol()),
            };
        }
        e
    }

    /// `(a, op, b, result)` per step.
    pub fn steps(&self) -> Vec<(i64, Op, i64, i64)> {
        let mut acc = self.first;
        self.rest
            .iter()
            .map(|&(op, b)| {
                let r = op.apply(acc, b);
                let step = (acc, op, b, r);
                acc = r;
                step
            })
            .collect()
    }

    /// The value.
    pub fn answer(&self) -> i64 {
        self.steps().last().map_or(self.first, |s| s.3)
    }

    /// What the model is given.
    pub fn prompt(&self) -> String {
        format!("Compute: {}\n", self.expression())
    }

    /// The step-by-step trace in the tag format (without any end token).
    pub fn completion(&self, tags: &Tags) -> String {
        let lines: String = self
            .steps()
            .iter()
            .map(|(a, op, b, r)| format!("{a} {} {b} = {r}\n", op.symbol()))
            .collect();
        format!(
            "{}\n{lines}{}\n{}\n\\boxed{{{}}}\n{}",
            tags.thought_open,
            tags.thought_close,
            tags.solution_open,
            self.answer(),
            tags.solution_close
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{score, MetricsConfig};

    fn space() -> ProblemSpace {
        ProblemSpace {
            max_operand: 9,
            heldout_percent: 20,
            split_seed: 7,
            max_level: 4,
        }
    }

    #[test]
    fn a_trace_is_well_formed_and_correct() {
        let p = Problem {
            id: "x".into(),
            level: 3,
            first: 7,
            rest: vec![(Op::Add, 5), (Op::Mul, 3), (Op::Sub, 40)],
        };
        assert_eq!(p.expression(), "((7 + 5) * 3) - 40");
        assert_eq!(p.answer(), -4);
        let c = p.completion(&Tags::default());
        assert_eq!(c, "<|begin_of_thought|>\n7 + 5 = 12\n12 * 3 = 36\n36 - 40 = -4\n<|end_of_thought|>\n<|begin_of_solution|>\n\\boxed{-4}\n<|end_of_solution|>");
        let cfg = MetricsConfig::default();
        for p in space()
            .problems(Split::HeldOut, &[1, 2, 3, 4], 200, 1)
            .unwrap()
        {
            let s = score(&p.completion(&cfg.tags), &p.answer().to_string(), &cfg);
            assert!(s.sf && s.sc, "{}", p.expression());
        }
    }

    #[test]
    fn splits_are_disjoint_deterministic_and_near_their_share() {
        let s = space();
        let train: BTreeSet<String> = s
            .problems(Split::Train, &[2], 2000, 3)
            .unwrap()
            .iter()
            .map(Problem::expression)
            .collect();
        let held = s.problems(Split::HeldOut, &[2], 400, 3).unwrap();
        assert!(held.iter().all(|p| !train.contains(&p.expression())));
        assert_eq!(held, s.problems(Split::HeldOut, &[2], 400, 3).unwrap());
        assert_ne!(held, s.problems(Split::HeldOut, &[2], 400, 4).unwrap());
        for step in 1..50 {
            let p = s.train_example(&[1, 2], 9, step, 0).unwrap();
            assert_eq!(s.split_of(&p.expression()), Split::Train);
        }
        // Level 1 holds 9 · 3 · 9 = 243 problems; the hash holds out close to 20% of them.
        let all = s.problems(Split::HeldOut, &[1], 30, 1).unwrap().len()
            + s.problems(Split::Train, &[1], 150, 1).unwrap().len();
        assert_eq!(all, 180);
        let e = s.problems(Split::HeldOut, &[1], 243, 1).unwrap_err();
        assert!(e.contains("distinct heldout problems"), "{e}");
        assert!(s
            .problems(Split::Train, &[5], 1, 1)
            .unwrap_err()
            .contains("level 5"));
    }
}
