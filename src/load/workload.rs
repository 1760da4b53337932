//! What a load level sends: synthetic requests of exact lengths as random token ids (optional
//! length spread, optional shared prefix), or the seed's prompts (or the user's file) cycled in
//! order. Request `i` depends only on the seed and `i`, so a level replays exactly.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::engine::streams::StreamRequest;

/// Synthetic request lengths (`--input-tokens`, `--output-tokens`, `--length-spread`,
/// `--shared-prefix`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Synthetic {
    /// Prompt tokens per request (the shared prefix included).
    pub input_tokens: u32,
    /// Generated tokens per request.
    pub output_tokens: u32,
    /// Lengths drawn uniformly in `[L·(1−s), L·(1+s)]`; 0 gives exact lengths.
    pub spread: f64,
    /// The first K prompt tokens are the same in every request.
    pub shared_prefix: u32,
}

impl Synthetic {
    /// Shortest and longest prompt.
    pub fn input_range(&self) -> (u32, u32) {
        range(self.input_tokens, self.spread)
    }

    /// Fewest and most generated tokens.
    pub fn output_range(&self) -> (u32, u32) {
        range(self.output_tokens, self.spread)
    }
}

fn range(len: u32, spread: f64) -> (u32, u32) {
    let lo = (f64::from(len) * (1.0 - spread)).round().max(1.0) as u32;
    let hi = (f64::from(len) * (1.0 + spread)).round().max(1.0) as u32;
    (lo, hi.max(lo))
}

/// One prompt of the seed's set, as the engine's token ids.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptTokens {
    /// The prompt's name.
    pub name: String,
    /// Token ids (after the chat template).
    pub ids: Vec<i64>,
    /// Tokens to generate.
    pub max_tokens: u32,
}

/// The requests of a level.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// Random token ids of exact (or spread) lengths.
    Synthetic {
        /// Lengths.
        spec: Synthetic,
        /// Token ids are drawn from `[first_id, vocab)`, past the special tokens most
        /// vocabularies put first.
        first_id: u32,
        /// Vocabulary size.
        vocab: u32,
        /// The shared prefix.
        prefix: Vec<i64>,
        /// Seed.
        seed: u64,
    },
    /// The seed's prompts (or the user's), in order, over and over.
    Prompts(Vec<PromptTokens>),
}

impl Workload {
    /// Synthetic requests over a vocabulary of `vocab` ids.
    pub fn synthetic(spec: Synthetic, vocab: u32, seed: u64) -> Self {
        // Most vocabularies put their special and byte tokens first.
        let first_id = (vocab / 4).min(1000);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5348_4152_4544); // "SHARED"
        let prefix = (0..spec.shared_prefix)
            .map(|_| i64::from(rng.random_range(first_id..vocab.max(first_id + 1))))
            .collect();
        Self::Synthetic {
            spec,
            first_id,
            vocab,
            prefix,
            seed,
        }
    }

    /// Request number `i`.
    pub fn request(&self, i: usize) -> StreamRequest {
        match self {
            Self::Synthetic {
                spec,
                first_id,
                vocab,
                prefix,
                seed,
            } => {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64).rotate_left(17));
                let (ilo, ihi) = spec.input_range();
                let (olo, ohi) = spec.output_range();
                let input = rng.random_range(ilo..=ihi) as usize;
                let output = rng.random_range(olo..=ohi);
                let mut prompt = Vec::with_capacity(input.max(prefix.len()));
                prompt.extend_from_slice(prefix);
                let hi = (*vocab).max(first_id + 1);
                while prompt.len() < input.max(prefix.len() + 1) {
                    prompt.push(i64::from(rng.random_range(*first_id..hi)));
                }
                StreamRequest {
                    id: i,
                    prompt,
                    max_tokens: output,
                }
            }
            Self::Prompts(list) => {
                let p = &list[i % list.len().max(1)];
                StreamRequest {
                    id: i,
                    prompt: p.ids.clone(),
                    max_tokens: p.max_tokens,
                }
            }
        }
    }

    /// The most tokens (prompt + generated) any request needs.
    pub fn max_need(&self) -> u64 {
        match self {
            Self::Synthetic { spec, prefix, .. } => {
                let input = u64::from(spec.input_range().1).max(prefix.len() as u64 + 1);
                input + u64::from(spec.output_range().1)
            }
            Self::Prompts(list) => list
                .iter()
                .map(|p| p.ids.len() as u64 + u64::from(p.max_tokens))
                .max()
                .unwrap_or(0),
        }
    }

    /// Names the workload in the results.
    pub fn describe(&self) -> String {
        match self {
            Self::Synthetic { spec, .. } => format!(
                "synthetic: {} input tokens, {} output tokens, spread {}, shared prefix {}",
                spec.input_tokens, spec.output_tokens, spec.spread, spec.shared_prefix
            ),
            Self::Prompts(list) => format!(
                "prompts: {}",
                list.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(spread: f64, shared_prefix: u32) -> Synthetic {
        Synthetic {
            input_tokens: 64,
            output_tokens: 16,
            spread,
            shared_prefix,
        }
    }

    #[test]
    fn exact_lengths_and_replay() {
        let w = Workload::synthetic(spec(0.0, 0), 49152, 42);
        for i in 0..20 {
            let r = w.request(i);
            assert_eq!((r.id, r.prompt.len(), r.max_tokens), (i, 64, 16));
            assert!(r.prompt.iter().all(|&t| (1000..49152).contains(&t)));
            assert_eq!(r, Workload::synthetic(spec(0.0, 0), 49152, 42).request(i));
        }
        assert_ne!(w.request(0).prompt, w.request(1).prompt);
        assert_eq!(w.max_need(), 80);
    }

    #[test]
    fn spread_and_shared_prefix() {
        let w = Workload::synthetic(spec(0.5, 10), 32000, 1);
        let reqs: Vec<_> = (0..50).map(|i| w.request(i)).collect();
        assert!(reqs.iter().all(|r| (32..=96).contains(&r.prompt.len())));
        assert!(reqs.iter().all(|r| (8..=24).contains(&r.max_tokens)));
        assert!(reqs.iter().any(|r| r.prompt.len() != 64));
        assert!(reqs.iter().all(|r| r.prompt[..10] == reqs[0].prompt[..10]));
        assert_ne!(reqs[0].prompt[10..], reqs[1].prompt[10..]);
        assert_eq!(w.max_need(), 96 + 24);
    }

    #[test]
    fn prompts_cycle() {
        let w = Workload::Prompts(vec![
            PromptTokens {
                name: "a".into(),
                ids: vec![1, 2],
                max_tokens: 3,
            },
            PromptTokens {
                name: "b".into(),
                ids: vec![4],
                max_tokens: 5,
            },
        ]);
        assert_eq!(w.request(2).prompt, vec![1, 2]);
        assert_eq!(w.request(3).max_tokens, 5);
        assert_eq!(w.max_need(), 6);
        assert_eq!(w.describe(), "prompts: a,b");
    }
}
