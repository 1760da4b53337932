//! `--compare-http --api chat`: both sides take the same chat messages. The in-process engine
//! renders the model's template; the server gets the messages on its chat endpoint with the same
//! `chat_template_kwargs`. Before the runs the server is asked what it renders from those messages
//! (llama-server's `/apply-template` and `/tokenize`; `vllm serve`'s `/tokenize` of the messages,
//! which returns token ids, not text) and the answer is compared with the in-process prompt.

use serde_json::{Map, Value};

use crate::engine::http::tokenize::{user_message, TokenizeError};
use crate::engine::http::HttpEngine;
use crate::engine::{EngineError, PreparedPrompt, PromptMode};
use crate::prompts::PromptSpec;
use crate::results::http_comparison::ChatPromptCheck;

/// Which server renders the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// llama-server: the rendered text (`/apply-template`) and its tokens (`/tokenize`).
    LlamaServer,
    /// `vllm serve`: the token ids of the rendered messages (`/tokenize` with `messages`).
    VllmServe,
}

/// The in-process side of one prompt, as the check needs it.
#[derive(Debug, Clone)]
pub struct InProcessPrompt {
    /// The prompt's name.
    pub name: String,
    /// The user message.
    pub message: String,
    /// The rendered prompt the in-process engine evaluates.
    pub text: String,
    /// Its prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Its token ids (vLLM; compared with `vllm serve`'s).
    pub token_ids: Option<Vec<i64>>,
}

/// What the chat comparison needs on the HTTP side: the messages to send, the arguments, and the
/// in-process prompts to check the server's rendering against.
#[derive(Debug, Clone)]
pub struct ChatSide {
    /// Who renders on the server.
    pub renderer: Renderer,
    /// The in-process prompts with their messages.
    pub prompts: Vec<InProcessPrompt>,
    /// The HTTP side's prompts (the user messages).
    pub http_prepared: Vec<PreparedPrompt>,
    /// `chat_template_kwargs`, sent with every request and with the check.
    pub kwargs: Map<String, Value>,
}

impl ChatSide {
    /// Gives the server engine the template arguments and checks its rendering of every prompt.
    pub fn check(&self, http: &mut HttpEngine) -> Vec<(String, ChatPromptCheck)> {
        http.set_chat_kwargs(self.kwargs.clone());
        check(self.renderer, http, &self.prompts, &self.kwargs)
    }
}

/// Refuses prompt modes the chat endpoint cannot reproduce on the server, before anything loads.
pub fn check_mode(mode: &PromptMode) -> anyhow::Result<()> {
    match mode {
        PromptMode::Raw => anyhow::bail!(
            "--compare-http --api chat sends chat messages to the server, and --raw-prompt has none: drop --raw-prompt, or use --api completions"
        ),
        PromptMode::Chat {
            template: Some(name),
            ..
        } => anyhow::bail!(
            "--compare-http --api chat renders the model's Jinja template on both sides, and --chat-template {name} is llama.cpp's built-in one: drop --chat-template, pass --chat-template-file FILE, or use --api completions"
        ),
        PromptMode::Chat { .. } => Ok(()),
    }
}

/// The template arguments both sides get.
pub fn kwargs(mode: &PromptMode) -> Map<String, Value> {
    match mode {
        PromptMode::Chat { options, .. } => options.kwargs.clone(),
        PromptMode::Raw => Map::new(),
    }
}

/// The HTTP side's prompts: the user messages (the server renders them).
pub fn http_prompts(prompts: &[PromptSpec], prepared: &[PreparedPrompt]) -> Vec<PreparedPrompt> {
    prompts
        .iter()
        .zip(prepared)
        .map(|(spec, p)| PreparedPrompt {
            name: p.name.clone(),
            text: spec.prompt.clone(),
            max_tokens: p.max_tokens,
            prompt_tokens: None,
        })
        .collect()
}

/// The in-process prompts with their messages; `ids` gives a prompt's token ids (vLLM).
pub fn inprocess_prompts(
    prompts: &[PromptSpec],
    prepared: &[PreparedPrompt],
    mut ids: impl FnMut(&str) -> Result<Option<Vec<i64>>, EngineError>,
) -> Result<Vec<InProcessPrompt>, EngineError> {
    prompts
        .iter()
        .zip(prepared)
        .map(|(spec, p)| {
            Ok(InProcessPrompt {
                name: p.name.clone(),
                message: spec.prompt.clone(),
                text: p.text.clone(),
                prompt_tokens: p.prompt_tokens,
                token_ids: ids(&p.text)?,
            })
        })
        .collect()
}

/// Asks `http`'s server what it renders for each prompt's messages and compares it with the
/// in-process prompt; prints one warning line per prompt that differs (or that the server would
/// not render).
fn check(
    renderer: Renderer,
    http: &HttpEngine,
    prompts: &[InProcessPrompt],
    kwargs: &Map<String, Value>,
) -> Vec<(String, ChatPromptCheck)> {
    let mut out = Vec::new();
    for p in prompts {
        let result = match renderer {
            Renderer::LlamaServer => llama_server(http, p, kwargs),
            Renderer::VllmServe => vllm_serve(http, p, kwargs),
        };
        match result {
            Ok(c) => {
                if !c.equal {
                    eprintln!("warning: {}", mismatch(&p.name, &c));
                }
                out.push((p.name.clone(), c));
            }
            Err(e) => eprintln!(
                "warning: prompt '{}': cannot ask the server for its rendering of the messages ({e}); the prompts are not checked",
                p.name
            ),
        }
    }
    out
}

/// The one warning line of a mismatch, naming both sizes.
pub fn mismatch(name: &str, c: &ChatPromptCheck) -> String {
    let tokens = |t: Option<u64>| t.map_or(String::new(), |t| format!(", {t} tokens"));
    let server = match c.server_bytes {
        Some(b) => format!("{b} bytes{}", tokens(c.server_prompt_tokens)),
        None => tokens(c.server_prompt_tokens)
            .trim_start_matches(", ")
            .to_string(),
    };
    format!(
        "prompt '{name}': the server's rendering of the chat messages ({server}) differs from the in-process prompt ({} bytes{}); compared {}: the two sides do not evaluate the same prompt",
        c.inprocess_bytes,
        tokens(c.inprocess_prompt_tokens),
        c.compared
    )
}

fn llama_server(
    http: &HttpEngine,
    p: &InProcessPrompt,
    kwargs: &Map<String, Value>,
) -> Result<ChatPromptCheck, TokenizeError> {
    let theirs = http.apply_template(&user_message(&p.message), kwargs)?;
    // The chat endpoint tokenizes its rendering with the special tokens added and parsed.
    let server_tokens = http.tokenize_text(&theirs)?.len() as u64;
    Ok(ChatPromptCheck {
        compared: "text, byte for byte (llama-server /apply-template)".into(),
        equal: theirs == p.text,
        inprocess_bytes: p.text.len(),
        server_bytes: Some(theirs.len()),
        inprocess_prompt_tokens: p.prompt_tokens,
        server_prompt_tokens: Some(server_tokens),
    })
}

fn vllm_serve(
    http: &HttpEngine,
    p: &InProcessPrompt,
    kwargs: &Map<String, Value>,
) -> Result<ChatPromptCheck, TokenizeError> {
    let theirs = http.tokenize_messages(&user_message(&p.message), kwargs)?;
    Ok(ChatPromptCheck {
        compared: "token ids (vllm serve /tokenize of the messages; it returns no text)".into(),
        equal: p.token_ids.as_deref() == Some(theirs.as_slice()),
        inprocess_bytes: p.text.len(),
        server_bytes: None,
        inprocess_prompt_tokens: p.prompt_tokens,
        server_prompt_tokens: Some(theirs.len() as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::ChatOptions;

    #[test]
    fn raw_prompts_and_builtin_templates_cannot_go_to_the_chat_endpoint() {
        let e = check_mode(&PromptMode::Raw).unwrap_err().to_string();
        assert!(e.contains("--api completions"), "{e}");
        let named = PromptMode::Chat {
            template: Some("chatml".into()),
            options: ChatOptions::default(),
        };
        let e = check_mode(&named).unwrap_err().to_string();
        assert!(e.contains("drop --chat-template"), "{e}");
        let own = PromptMode::Chat {
            template: None,
            options: ChatOptions::default(),
        };
        assert!(check_mode(&own).is_ok());
    }

    #[test]
    fn a_mismatch_is_one_line_naming_both_sizes() {
        let c = ChatPromptCheck {
            compared: "text".into(),
            equal: false,
            inprocess_bytes: 120,
            server_bytes: Some(180),
            inprocess_prompt_tokens: Some(16),
            server_prompt_tokens: Some(37),
        };
        let m = mismatch("short", &c);
        assert!(!m.contains('\n'));
        assert!(
            m.contains("(180 bytes, 37 tokens)") && m.contains("(120 bytes, 16 tokens)"),
            "{m}"
        );
        let ids = ChatPromptCheck {
            server_bytes: None,
            ..c
        };
        assert!(mismatch("short", &ids).contains("(37 tokens)"));
    }
}
