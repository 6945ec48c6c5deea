//! [`train_bpe`]: the ladder's byte-level BPE tokenizer, learned deterministically from a
//! corpus and written as a `tokenizer.json` that the `tokenizers` library (Rust and
//! Python) loads as it is.
//!
//! The rule, so the result can be predicted and reproduced:
//! 1. Pre-tokenize with `tokenizers`' own ByteLevel pre-tokenizer (GPT-2 regex, no prefix
//!    space), the exact splitting the saved tokenizer applies when encoding.
//! 2. Ids 0–255 are the 256 bytes (id = byte value), so any text encodes losslessly.
//! 3. Repeatedly merge the adjacent pair with the highest count over all words (a word
//!    counts as often as it occurs); ties go to the smaller (left id, right id). A merge
//!    whose bytes already form a token reuses that id.
//! 4. Stop at `vocab_size` ids. Pairs seen fewer than `min_frequency` times are never
//!    merged; running out of pairs before `vocab_size` is an error, never a smaller vocab.
//!
//! No hash-map iteration order reaches the result: words are sorted before ids are
//! assigned and the pair queue is totally ordered.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use super::error::TrainError;
use crate::tokenizer::gpt2_byte_chars;

/// A learned byte-level BPE: token bytes by id and the merges in rank order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bpe {
    /// Bytes of every token, by id; ids 0–255 are the single bytes.
    pub tokens: Vec<Vec<u8>>,
    /// Merges `(left, right)` by rank (rank = position).
    pub merges: Vec<(u32, u32)>,
}

type Pair = (u32, u32);

/// Learns a BPE of exactly `vocab_size` ids from `text`; see the module docs for the rule.
pub fn train_bpe(text: &str, vocab_size: usize, min_frequency: u64) -> Result<Bpe, TrainError> {
    if vocab_size < 256 {
        return Err(TrainError::Tokenizer(format!(
            "vocab_size {vocab_size} is below the 256 byte tokens"
        )));
    }
    let (mut words, counts) = word_counts(text)?;
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut ids: HashMap<Vec<u8>, u32> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut pair_counts: HashMap<Pair, i64> = HashMap::new();
    let mut where_: HashMap<Pair, HashSet<usize>> = HashMap::new();
    for (w, word) in words.iter().enumerate() {
        for p in word.windows(2) {
            *pair_counts.entry((p[0], p[1])).or_default() += counts[w] as i64;
            where_.entry((p[0], p[1])).or_default().insert(w);
        }
    }
    let mut heap: BinaryHeap<(i64, Reverse<Pair>)> =
        pair_counts.iter().map(|(&p, &c)| (c, Reverse(p))).collect();
    let mut merges = Vec::new();
    while tokens.len() < vocab_size {
        let Some((count, Reverse(pair))) = heap.pop() else {
            break;
        };
        let current = pair_counts.get(&pair).copied().unwrap_or(0);
        if count != current {
            // Stale entry: the pair's count changed after it was queued.
            if current > 0 {
                heap.push((current, Reverse(pair)));
            }
            continue;
        }
        if (count as u64) < min_frequency {
            break;
        }
        let bytes = [
            tokens[pair.0 as usize].as_slice(),
            tokens[pair.1 as usize].as_slice(),
        ]
        .concat();
        let new_id = match ids.get(&bytes) {
            Some(&id) => id,
            None => {
                let id = tokens.len() as u32;
                ids.insert(bytes.clone(), id);
                tokens.push(bytes);
                id
            }
        };
        merges.push(pair);
        let index = PairIndex {
            counts: &mut pair_counts,
            words_with: &mut where_,
            heap: &mut heap,
        };
        index.merge(&mut words, &counts, pair, new_id);
    }
    if tokens.len() < vocab_size {
        return Err(TrainError::Tokenizer(format!(
            "the corpus yields only {} tokens with min_frequency {min_frequency}, fewer than vocab_size {vocab_size}",
            tokens.len()
        )));
    }
    Ok(Bpe { tokens, merges })
}

/// The pair counts, which words hold each pair, and the queue of pairs by count; kept
/// consistent through each merge.
struct PairIndex<'a> {
    counts: &'a mut HashMap<Pair, i64>,
    words_with: &'a mut HashMap<Pair, HashSet<usize>>,
    heap: &'a mut BinaryHeap<(i64, Reverse<Pair>)>,
}

impl PairIndex<'_> {
    /// Replaces `pair` by `new_id` in every word holding it, updating the counts of the
    /// pairs around it and queueing each changed pair with its new count.
    fn merge(self, words: &mut [Vec<u32>], counts: &[u64], pair: Pair, new_id: u32) {
        let mut touched: Vec<usize> = self
            .words_with
            .remove(&pair)
            .unwrap_or_default()
            .into_iter()
            .collect();
        touched.sort_unstable();
        let mut changed: BTreeMap<Pair, ()> = BTreeMap::new();
        for w in touched {
            let merged = merge_word(&words[w], pair, new_id);
            let c = counts[w] as i64;
            for p in words[w].windows(2) {
                let key = (p[0], p[1]);
                *self.counts.entry(key).or_default() -= c;
                changed.insert(key, ());
            }
            for p in merged.windows(2) {
                let key = (p[0], p[1]);
                *self.counts.entry(key).or_default() += c;
                self.words_with.entry(key).or_default().insert(w);
                changed.insert(key, ());
            }
            words[w] = merged;
        }
        self.counts.remove(&pair);
        for (p, ()) in changed {
            match self.counts.get(&p) {
                Some(&c) if c > 0 => self.heap.push((c, Reverse(p))),
                _ => {
                    self.counts.remove(&p);
                }
            }
        }
    }
}

/// Distinct pre-tokenized words as byte ids, sorted, with their counts.
fn word_counts(text: &str) -> Result<(Vec<Vec<u32>>, Vec<u64>), TrainError> {
    let inverse: HashMap<char, u8> = gpt2_byte_chars()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect();
    let mut pts = PreTokenizedString::from(text);
    ByteLevel::new(false, true, true)
        .pre_tokenize(&mut pts)
        .map_err(|e| TrainError::Tokenizer(format!("pre-tokenize: {e}")))?;
    let mut counts: BTreeMap<Vec<u32>, u64> = BTreeMap::new();
    for (piece, _, _) in pts.get_splits(OffsetReferential::Original, OffsetType::Byte) {
        let ids = piece
            .chars()
            .map(|c| inverse.get(&c).map(|&b| u32::from(b)))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| {
                TrainError::Tokenizer(format!(
                    "pre-tokenizer produced a non-byte character in {piece:?}"
                ))
            })?;
        *counts.entry(ids).or_default() += 1;
    }
    Ok(counts.into_iter().unzip())
}

/// `word` with every non-overlapping occurrence of `pair`, left to right, replaced by `id`.
fn merge_word(word: &[u32], pair: Pair, id: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if i + 1 < word.len() && (word[i], word[i + 1]) == pair {
            out.push(id);
            i += 2;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    out
}

impl Bpe {
    /// The `tokenizer.json`: BPE model over GPT-2 byte-level characters, ByteLevel
    /// pre-tokenizer (regex, no prefix space) and decoder, no normalizer, no special tokens.
    /// Bytes depend only on the merges (keys in id order, fixed indentation).
    pub fn tokenizer_json(&self) -> String {
        let chars = gpt2_byte_chars();
        let piece = |t: &[u8]| t.iter().map(|&b| chars[b as usize]).collect::<String>();
        let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        // The vocabulary is written by hand in id order: serde_json's map would sort the keys.
        let vocab: Vec<String> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(id, t)| format!("      {}: {id}", serde_json::Value::String(piece(t))))
            .collect();
        let merges: Vec<String> = self
            .merges
            .iter()
            .map(|&(a, b)| {
                format!(
                    "      {}",
                    serde_json::Value::String(format!(
                        "{} {}",
                        piece(&self.tokens[a as usize]),
                        piece(&self.tokens[b as usize])
                    ))
                )
            })
            .collect();
        let compact = |v: &serde_json::Value| v.to_string();
        format!(
            "{{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [],\n  \"normalizer\": null,\n  \
             \"pre_tokenizer\": {bl},\n  \"post_processor\": null,\n  \"decoder\": {bl},\n  \"model\": {{\n    \"type\": \"BPE\",\n    \
             \"dropout\": null,\n    \"unk_token\": null,\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \
             \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {{\n{}\n    }},\n    \"merges\": [\n{}\n    ]\n  }}\n}}\n",
            vocab.join(",\n"),
            merges.join(",\n"),
            bl = compact(&byte_level),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{HfTokenizer, TextTokenizer};
    use proptest::prelude::*;

    const TEXT: &str =
        "the cat sat on the mat; the cat ate the rat.\nThe mat, the hat!\n  tabs\tand 12 34 café";

    fn tokenizer(bpe: &Bpe) -> HfTokenizer {
        HfTokenizer::new(
            tokenizers::Tokenizer::from_bytes(bpe.tokenizer_json().as_bytes()).unwrap(),
        )
    }

    #[test]
    fn every_merge_is_the_most_frequent_pair_with_ties_to_smaller_ids() {
        let bpe = train_bpe(TEXT, 290, 1).unwrap();
        assert_eq!(bpe.tokens.len(), 290);
        // Replay by brute force: recount every pair after each merge.
        let (mut words, counts) = word_counts(TEXT).unwrap();
        for (rank, &m) in bpe.merges.iter().enumerate() {
            let mut c: BTreeMap<Pair, u64> = BTreeMap::new();
            for (w, n) in words.iter().zip(&counts) {
                for p in w.windows(2) {
                    *c.entry((p[0], p[1])).or_default() += n;
                }
            }
            let best = c
                .iter()
                .max_by_key(|(p, n)| (**n, Reverse(**p)))
                .map(|(p, _)| *p)
                .unwrap();
            assert_eq!(m, best, "merge {rank}");
            let id = bpe
                .tokens
                .iter()
                .position(|t| {
                    *t == [
                        bpe.tokens[m.0 as usize].clone(),
                        bpe.tokens[m.1 as usize].clone(),
                    ]
                    .concat()
                })
                .unwrap() as u32;
            words = words.iter().map(|w| merge_word(w, m, id)).collect();
        }
    }

    #[test]
    fn same_text_same_file_and_the_library_encodes_training_words_as_single_tokens() {
        let a = train_bpe(TEXT, 270, 1).unwrap();
        let b = train_bpe(TEXT, 270, 1).unwrap();
        assert_eq!(a.tokenizer_json(), b.tokenizer_json());
        let tok = tokenizer(&a);
        assert_eq!(tok.vocab_size(), 270);
        let ids = tok.encode(" the").unwrap();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(a.tokens[ids[0] as usize], b" the");
    }

    #[test]
    fn too_small_a_corpus_is_an_error() {
        let e = train_bpe("ab", 300, 2).unwrap_err().to_string();
        assert!(e.contains("vocab_size 300"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn any_text_round_trips(text in any::<String>()) {
            static TOK: std::sync::OnceLock<HfTokenizer> = std::sync::OnceLock::new();
            let tok = TOK.get_or_init(|| tokenizer(&train_bpe(TEXT, 280, 1).unwrap()));
            let ids = tok.encode(&text).unwrap();
            prop_assert_eq!(tok.decode(&ids).unwrap(), text);
        }
    }
}
