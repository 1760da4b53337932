//! Helpers of the embedded vLLM engine: the prompt's token ids, the think markers from the
//! tokenizer (with its whitespace-only tokens), and Python exception messages on one line.

use std::sync::Arc;

use pyo3::prelude::*;

use super::VllmEngine;
use crate::engine::EngineError;
use crate::template::reasoning;

impl VllmEngine {
    /// The token ids the engine evaluates for `text` (the tokenizer's special tokens added, as
    /// `generate` sends them).
    pub fn prompt_token_ids(&self, text: &str) -> Result<Vec<i64>, EngineError> {
        self.call(EngineError::Prompt, |d| {
            d.call_method1("token_ids", (text,))?.extract()
        })
    }

    /// Finds the think markers named by `template` in the tokenizer's vocabulary (and, for a
    /// reasoning model, its whitespace-only tokens).
    pub(super) fn find_markers(
        &mut self,
        template: Option<&str>,
        wrap: fn(String) -> EngineError,
    ) -> Result<(), EngineError> {
        let failed = std::cell::RefCell::new(None);
        let markers = reasoning::find_markers(
            |text| {
                self.call(wrap, |d| d.call_method1("single_token", (text,))?.extract())
                    .unwrap_or_else(|e| {
                        *failed.borrow_mut() = Some(e);
                        None
                    })
            },
            template,
        );
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        if markers.is_some() && self.whitespace.is_empty() {
            let ids: Vec<i64> =
                self.call(wrap, |d| d.call_method0("whitespace_token_ids")?.extract())?;
            self.whitespace = Arc::from(ids);
        }
        self.markers = markers;
        Ok(())
    }
}

/// A multi-line exception message (pydantic's validation errors) as one line of bounded length.
pub(super) fn one_line(msg: &str) -> String {
    const MAX_CHARS: usize = 400;
    let msg = msg
        .split("For further information visit")
        .next()
        .unwrap_or_default();
    let flat = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn exception_messages_become_one_bounded_line() {
        let pydantic = "1 validation error for ModelConfig\nquantization\n  Value error, Unknown quantization method: bogus. [type=value_error]\n    For further information visit https://errors.example/v2/value_error";
        assert_eq!(
            one_line(pydantic),
            "1 validation error for ModelConfig quantization Value error, Unknown quantization method: bogus. [type=value_error]"
        );
        let long = "x ".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), 401);
    }
}
