//! Think markers: how a reasoning model's output is split into reasoning and answer, from the
//! model's vocabulary and chat template; and the per-token classifier an engine runs on its token
//! loop (one comparison per token).
//!
//! A model reasons when its vocabulary holds an end-of-reasoning marker as one token and its chat
//! template names the marker pair (Qwen3, DeepSeek-R1 distills, QwQ: `<think>` … `</think>`). The
//! reasoning is everything up to the end marker; the answer starts at the first token after it
//! that is not only whitespace (llama-server drops that whitespace from the answer it streams).

/// Marker pairs used by released reasoning models, most common first.
pub const MARKER_PAIRS: &[(&str, &str)] = &[
    ("<think>", "</think>"),
    ("<seed:think>", "</seed:think>"),
    ("<|START_THINKING|>", "<|END_THINKING|>"),
    ("[THINK]", "[/THINK]"),
    ("◁think▷", "◁/think▷"),
];

/// A model's think markers and their token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkMarkers {
    /// Start of reasoning, e.g. `<think>`.
    pub start: String,
    /// End of reasoning, e.g. `</think>`.
    pub end: String,
    /// The start marker's token id, when it is one token.
    pub start_id: Option<i64>,
    /// The end marker's token id.
    pub end_id: i64,
}

/// Finds the model's think markers: the first pair of [`MARKER_PAIRS`] whose end marker is one
/// token of the vocabulary (`single_token` gives its id) and which the chat template names.
/// `None` for a model that does not reason (and then nothing about reasoning is recorded).
pub fn find_markers(
    single_token: impl Fn(&str) -> Option<i64>,
    template: Option<&str>,
) -> Option<ThinkMarkers> {
    let template = template?;
    MARKER_PAIRS.iter().find_map(|&(start, end)| {
        if !(template.contains(start) || template.contains(end)) {
            return None;
        }
        let end_id = single_token(end)?;
        Some(ThinkMarkers {
            start: start.into(),
            end: end.into(),
            start_id: single_token(start),
            end_id,
        })
    })
}

/// Where one generated token belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reasoning: the markers, the thoughts, and the whitespace before the answer.
    Reasoning,
    /// The answer.
    Answer,
}

/// Sorts a run's tokens into reasoning and answer, token by token.
#[derive(Debug, Clone)]
pub struct PhaseTracker {
    start_id: Option<i64>,
    end_id: i64,
    in_reasoning: bool,
    closed: bool,
    answering: bool,
}

impl PhaseTracker {
    /// A tracker for one run of `prompt`: when the rendered prompt ends with an open start marker
    /// (DeepSeek-R1's and some Qwen3 templates put `<think>` in the generation prompt), the model
    /// starts inside its reasoning.
    pub fn new(markers: &ThinkMarkers, prompt: &str) -> Self {
        Self {
            start_id: markers.start_id,
            end_id: markers.end_id,
            in_reasoning: prompt.trim_end().ends_with(&markers.start),
            closed: false,
            answering: false,
        }
    }

    /// The phase of the next generated token (`piece` is its text).
    #[inline]
    pub fn next(&mut self, id: i64, piece: &[u8]) -> Phase {
        if self.answering {
            return Phase::Answer;
        }
        if Some(id) == self.start_id && !self.closed {
            self.in_reasoning = true;
            return Phase::Reasoning;
        }
        if self.in_reasoning {
            if id == self.end_id {
                self.in_reasoning = false;
                self.closed = true;
            }
            return Phase::Reasoning;
        }
        if self.closed && piece.iter().all(u8::is_ascii_whitespace) {
            return Phase::Reasoning;
        }
        self.answering = true;
        Phase::Answer
    }
}

/// Sorts deliveries of token ids for an engine that does not detokenize token by token (vLLM):
/// the whitespace test after the end marker looks the id up in the vocabulary's whitespace-only
/// tokens instead of reading the piece. A delivery that carries an answer token is an answer
/// delivery (its reasoning tokens, if any, count with the answer, as over HTTP).
#[derive(Debug, Clone)]
pub struct DeliverySorter {
    tracker: PhaseTracker,
    whitespace: std::sync::Arc<[i64]>,
    answering: bool,
}

impl DeliverySorter {
    /// A sorter for one run of `prompt`; `whitespace` holds the ids of the vocabulary's
    /// whitespace-only tokens, sorted.
    pub fn new(markers: &ThinkMarkers, prompt: &str, whitespace: std::sync::Arc<[i64]>) -> Self {
        Self {
            tracker: PhaseTracker::new(markers, prompt),
            whitespace,
            answering: false,
        }
    }

    /// Whether the answer has started (every later delivery is answer; no ids need reading).
    #[inline]
    pub fn answering(&self) -> bool {
        self.answering
    }

    /// The phase of the next delivery, from its token ids.
    #[inline]
    pub fn next(&mut self, ids: &[i64]) -> Phase {
        if self.answering {
            return Phase::Answer;
        }
        for &id in ids {
            let piece: &[u8] = if self.whitespace.binary_search(&id).is_ok() {
                b" "
            } else {
                b"x"
            };
            if self.tracker.next(id, piece) == Phase::Answer {
                self.answering = true;
            }
        }
        if self.answering {
            Phase::Answer
        } else {
            Phase::Reasoning
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vocabulary as (id, text) pairs; a text is one token when it is listed.
    fn vocab<'a>(list: &'a [(i64, &'a str)]) -> impl Fn(&str) -> Option<i64> + 'a {
        move |text| list.iter().find(|(_, t)| *t == text).map(|(id, _)| *id)
    }

    const QWEN3: &str = "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}";

    #[test]
    fn markers_need_the_vocabulary_and_the_template() {
        let v = [(1, "hello"), (151667, "<think>"), (151668, "</think>")];
        let m = find_markers(vocab(&v), Some(QWEN3)).unwrap();
        assert_eq!(
            (m.start.as_str(), m.end.as_str(), m.start_id, m.end_id),
            ("<think>", "</think>", Some(151667), 151668)
        );
        // A template that never names them: a model that does not reason.
        assert_eq!(find_markers(vocab(&v), Some("{{ messages }}")), None);
        assert_eq!(find_markers(vocab(&v), None), None);
        // Named in the template but not one token of the vocabulary.
        assert_eq!(find_markers(vocab(&[(1, "hello")]), Some(QWEN3)), None);
        // Another pair.
        let seed = [(7, "<seed:think>"), (8, "</seed:think>")];
        let m = find_markers(vocab(&seed), Some("{{ '<seed:think>' }}")).unwrap();
        assert_eq!((m.start_id, m.end_id), (Some(7), 8));
    }

    fn markers() -> ThinkMarkers {
        ThinkMarkers {
            start: "<think>".into(),
            end: "</think>".into(),
            start_id: Some(10),
            end_id: 11,
        }
    }

    fn phases(prompt: &str, tokens: &[(i64, &str)]) -> Vec<Phase> {
        let mut t = PhaseTracker::new(&markers(), prompt);
        tokens
            .iter()
            .map(|(id, p)| t.next(*id, p.as_bytes()))
            .collect()
    }

    use Phase::{Answer as A, Reasoning as R};

    #[test]
    fn reasoning_then_whitespace_then_answer() {
        let toks = [
            (10, "<think>"),
            (1, "hmm"),
            (11, "</think>"),
            (2, "\n\n"),
            (3, "Yes"),
            (2, "\n\n"),
            (10, "<think>"),
        ];
        assert_eq!(
            phases("<|im_start|>assistant\n", &toks),
            [R, R, R, R, A, A, A]
        );
    }

    #[test]
    fn an_open_block_in_the_prompt_starts_in_reasoning() {
        let toks = [(1, "so"), (11, "</think>"), (3, "Yes")];
        assert_eq!(phases("<｜Assistant｜><think>\n", &toks), [R, R, A]);
        // Thinking switched off: the template closed the block itself.
        assert_eq!(
            phases(
                "assistant\n<think>\n\n</think>\n\n",
                &[(3, "Yes"), (1, "so")]
            ),
            [A, A]
        );
    }

    #[test]
    fn reasoning_that_never_ends_has_no_answer() {
        let toks = [(10, "<think>"), (1, "a"), (1, "b")];
        assert_eq!(phases("", &toks), [R, R, R]);
    }

    #[test]
    fn deliveries_of_ids_are_sorted_without_their_text() {
        let ws: std::sync::Arc<[i64]> = vec![2, 5].into();
        let mut d = DeliverySorter::new(&markers(), "", ws.clone());
        // <think> hmm </think> "\n\n" then the answer; a delivery with an answer token is answer.
        assert_eq!(d.next(&[10, 1]), R);
        assert_eq!(d.next(&[11]), R);
        assert_eq!(d.next(&[2]), R);
        assert!(!d.answering());
        assert_eq!(d.next(&[5, 3]), A);
        assert!(d.answering());
        assert_eq!(d.next(&[10]), A);
        // Starting inside an open block that never closes: every delivery is reasoning.
        let mut d = DeliverySorter::new(&markers(), "assistant\n<think>\n", ws.clone());
        assert_eq!(d.next(&[1]), R);
        assert_eq!(d.next(&[2, 3]), R);
        // The template closed the block (thinking off): the first delivery is the answer.
        let mut d = DeliverySorter::new(&markers(), "<think>\n\n</think>\n\n", ws);
        assert_eq!(d.next(&[3]), A);
    }
}
