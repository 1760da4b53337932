//! The in-process chat prompt: the model's own Jinja template (or `--chat-template-file`) rendered
//! as llama-server renders it, with BOS/EOS text from the vocabulary; llama.cpp's built-in
//! template matcher for `--chat-template NAME`; and the model's think markers.

use std::path::Path;

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use serde_json::{json, Map, Value};

use crate::engine::EngineError;
use crate::prompts::PromptSpec;
use crate::template::reasoning::{self, ThinkMarkers};
use crate::template::{self, ChatOptions, ChatTemplate, Message, TemplateSource};

/// The model's `tokenizer.chat_template`, when it has one.
pub fn model_template(model: &LlamaModel) -> Option<String> {
    model
        .chat_template(None)
        .ok()
        .and_then(|t| t.to_string().ok())
        .filter(|s| !s.is_empty())
}

/// A token's text with special tokens rendered (`<|im_start|>`), as llama-server's
/// `common_token_to_piece(vocab, token, true)`; empty for a missing token.
fn special_text(model: &LlamaModel, token: LlamaToken) -> String {
    if token.0 < 0 {
        return String::new();
    }
    String::from_utf8_lossy(&model.vocab().token_to_piece(token, true, None)).into_owned()
}

/// The id of `text` when the vocabulary holds it as exactly one token.
fn single_token(model: &LlamaModel, text: &str) -> Option<i64> {
    match model
        .vocab()
        .tokenize(text.as_bytes(), false, true)
        .as_slice()
    {
        [t] => Some(i64::from(t.0)),
        _ => None,
    }
}

/// The model's think markers, from its vocabulary and `template` (the template in use, or the
/// model's own).
pub fn think_markers(model: &LlamaModel, template: Option<&str>) -> Option<ThinkMarkers> {
    reasoning::find_markers(|t| single_token(model, t), template)
}

/// The Jinja template to render: `--chat-template-file`, else the model's own; `None` when the
/// model has none.
pub fn jinja_template(
    model: &LlamaModel,
    options: &ChatOptions,
) -> Result<Option<ChatTemplate>, EngineError> {
    let (source, origin) = match &options.template_file {
        Some(path) => (
            template::read_template_file(path).map_err(|e| EngineError::Prompt(e.to_string()))?,
            TemplateSource::File(path.clone()),
        ),
        None => match model_template(model) {
            Some(s) => (s, TemplateSource::Model),
            None => return Ok(None),
        },
    };
    let vocab = model.vocab();
    Ok(Some(ChatTemplate {
        source,
        origin,
        bos_token: special_text(model, vocab.bos()),
        eos_token: special_text(model, vocab.eos()),
        add_bos: vocab.should_add_bos(),
        add_eos: vocab.should_add_eos(),
    }))
}

/// One user message through llama.cpp's built-in template `name` (`chatml`, `llama3`, …).
pub fn builtin(model: &LlamaModel, name: &str, prompt: &str) -> Result<String, EngineError> {
    let tmpl = LlamaChatTemplate::new(name)
        .map_err(|e| EngineError::Prompt(format!("invalid --chat-template: {e}")))?;
    let msg = LlamaChatMessage::new("user".into(), prompt.into())
        .map_err(|e| EngineError::Prompt(e.to_string()))?;
    model
        .apply_chat_template(&tmpl, &[msg], true)
        .map_err(|e| {
            EngineError::Prompt(format!(
                "the chat template {name} failed ({e}): pass another --chat-template NAME or --raw-prompt"
            ))
        })
}

/// Renders one user message with the Jinja template.
pub fn render(
    tmpl: &ChatTemplate,
    prompt: &str,
    options: &ChatOptions,
) -> Result<String, EngineError> {
    tmpl.render(&[Message::user(prompt)], &options.kwargs)
        .map_err(|e| EngineError::Prompt(e.to_string()))
}

/// What the results record about the chat template: where it came from, a fingerprint of its
/// source, the arguments, and the think markers when the model reasons.
pub fn describe(
    source: &str,
    fingerprint_of: Option<&str>,
    options: &ChatOptions,
    markers: Option<&ThinkMarkers>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("chat_template".into(), json!(source));
    if let Some(src) = fingerprint_of {
        m.insert(
            "chat_template_fingerprint".into(),
            json!(template::fingerprint(src)),
        );
    }
    if options.has_kwargs() {
        m.insert(
            "chat_template_kwargs".into(),
            Value::Object(options.kwargs.clone()),
        );
    }
    if let Some(mk) = markers {
        m.insert("think_markers".into(), json!([mk.start, mk.end]));
    }
    m
}

/// The chat prompt of one user message and what the results record about its template:
/// llama.cpp's built-in `template` when named, else the Jinja template (`--chat-template-file` or
/// the model's own). A template file also decides the think markers (`markers`).
pub fn prompt(
    model: &LlamaModel,
    model_path: &Path,
    (template, options): (Option<&str>, &ChatOptions),
    prompt: &PromptSpec,
    markers: &mut Option<ThinkMarkers>,
) -> Result<(String, Map<String, Value>), EngineError> {
    if let Some(name) = template {
        let text = builtin(model, name, &prompt.prompt)?;
        let what = format!("llama.cpp built-in {name}");
        return Ok((text, describe(&what, None, options, markers.as_ref())));
    }
    let tmpl = jinja_template(model, options)?.ok_or_else(|| {
        EngineError::Prompt(format!(
            "model {} has no chat template: pass --chat-template NAME (e.g. chatml), --chat-template-file FILE or --raw-prompt",
            model_path.display()
        ))
    })?;
    let text = render(&tmpl, &prompt.prompt, options)
        .map_err(|e| EngineError::Prompt(format!("prompt '{}': {e}", prompt.name)))?;
    if options.template_file.is_some() {
        *markers = think_markers(model, Some(&tmpl.source));
    }
    let about = describe(
        &tmpl.origin.describe(),
        Some(&tmpl.source),
        options,
        markers.as_ref(),
    );
    Ok((text, about))
}
