//! Chat templates: the model's own Jinja template rendered as llama-server renders it, so that the
//! in-process prompt is byte for byte the one the server builds from the same messages.
//!
//! llama-server (`--jinja`, its default) renders `tokenizer.chat_template` with a context of
//! `messages`, `add_generation_prompt = true`, `bos_token` / `eos_token` (the vocabulary's BOS and
//! EOS as text), `enable_thinking` (true unless a template argument says otherwise), `datetime` and
//! `date_string`, and the request's `chat_template_kwargs` merged on top; the helpers
//! `raise_exception` and `strftime_now` are defined, `trim_blocks` and `lstrip_blocks` are on, and a
//! leading BOS (trailing EOS) text is cut when the tokenizer adds that token itself. This module does
//! the same with `minijinja` and its Python-compatible string and dict methods.

pub mod reasoning;

use std::path::{Path, PathBuf};

use minijinja::{Environment, Error as JinjaError, ErrorKind};
use serde_json::{json, Map, Value};

/// Where a chat template came from, as recorded in the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// The model's own (`tokenizer.chat_template` in the GGUF).
    Model,
    /// A file given with `--chat-template-file`.
    File(PathBuf),
}

impl TemplateSource {
    /// How the results name it: `model` or `file:PATH`.
    pub fn describe(&self) -> String {
        match self {
            Self::Model => "model (tokenizer.chat_template, Jinja)".into(),
            Self::File(p) => format!("file {} (Jinja)", p.display()),
        }
    }
}

/// What the chat prompt is built with beyond the template itself: a template file and the template
/// arguments (`--chat-template-kwargs`, `--thinking`), given the same way to every engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatOptions {
    /// `--chat-template-file`: a Jinja template used instead of the model's.
    pub template_file: Option<PathBuf>,
    /// Extra template variables merged into the context (`{"enable_thinking": false}`).
    pub kwargs: Map<String, Value>,
}

impl ChatOptions {
    /// The options from the flags: `--chat-template-kwargs JSON` (an object) and `--thinking
    /// on|off`, which sets `enable_thinking` (and wins over the same key in the JSON).
    pub fn from_flags(
        template_file: Option<PathBuf>,
        kwargs_json: Option<&str>,
        thinking: Option<bool>,
    ) -> Result<Self, TemplateError> {
        let mut kwargs = match kwargs_json {
            None => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(TemplateError::Kwargs(
                        "must be a JSON object, e.g. '{\"enable_thinking\": false}'".into(),
                    ))
                }
                Err(e) => {
                    return Err(TemplateError::Kwargs(format!(
                        "is not valid JSON ({e}): write an object, e.g. '{{\"enable_thinking\": false}}'"
                    )))
                }
            },
        };
        if let Some(on) = thinking {
            kwargs.insert("enable_thinking".into(), json!(on));
        }
        Ok(Self {
            template_file,
            kwargs,
        })
    }

    /// Whether there is anything to pass on to a server (`chat_template_kwargs`).
    pub fn has_kwargs(&self) -> bool {
        !self.kwargs.is_empty()
    }
}

/// Why a template could not be read or rendered. Messages name the fix.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `--chat-template-file` could not be read.
    #[error("--chat-template-file {path}: {cause}: give a readable Jinja template file")]
    File {
        /// The file.
        path: String,
        /// What the OS said.
        cause: String,
    },
    /// `--chat-template-kwargs` is not a JSON object.
    #[error("--chat-template-kwargs {0}")]
    Kwargs(String),
    /// The template does not parse.
    #[error("the chat template ({source_name}) does not parse: {message}; pass --chat-template-file FILE with a fixed template, or --chat-template NAME")]
    Syntax {
        /// Where the template came from.
        source_name: String,
        /// minijinja's message.
        message: String,
    },
    /// The template failed while rendering (a `raise_exception`, a missing method).
    #[error("the chat template ({source_name}) failed: {message}; pass --chat-template-file FILE, or --chat-template NAME")]
    Render {
        /// Where the template came from.
        source_name: String,
        /// minijinja's message.
        message: String,
    },
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// `system`, `user`, `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(text: &str) -> Self {
        Self {
            role: "user".into(),
            content: text.into(),
        }
    }
}

/// A chat template with what the context needs from the vocabulary.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    /// The Jinja source.
    pub source: String,
    /// Where it came from.
    pub origin: TemplateSource,
    /// The BOS token as text (empty when the vocabulary has none).
    pub bos_token: String,
    /// The EOS token as text.
    pub eos_token: String,
    /// The tokenizer adds BOS itself: a rendered prompt that starts with the BOS text loses it.
    pub add_bos: bool,
    /// The tokenizer adds EOS itself: a rendered prompt that ends with the EOS text loses it.
    pub add_eos: bool,
}

/// Reads `--chat-template-file`.
pub fn read_template_file(path: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path).map_err(|e| TemplateError::File {
        path: path.display().to_string(),
        cause: e.to_string(),
    })
}

fn raise_exception(message: String) -> Result<String, JinjaError> {
    Err(JinjaError::new(
        ErrorKind::InvalidOperation,
        format!("the template raised: {message}"),
    ))
}

fn strftime_now(format: String) -> Result<String, JinjaError> {
    use chrono::format::{Item, StrftimeItems};
    let items: Vec<Item<'_>> = StrftimeItems::new(&format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: bad format {format:?}"),
        ));
    }
    Ok(chrono::Local::now()
        .format_with_items(items.into_iter())
        .to_string())
}

/// The environment llama-server's renderer amounts to.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build();
    if let Ok(syntax) = syntax {
        env.set_syntax(syntax);
    }
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env
}

impl ChatTemplate {
    /// The context llama-server builds, with `kwargs` merged on top.
    pub fn context(&self, messages: &[Message], kwargs: &Map<String, Value>) -> Value {
        let now = chrono::Local::now();
        let mut ctx = Map::new();
        ctx.insert("messages".into(), json!(messages));
        ctx.insert("bos_token".into(), json!(self.bos_token));
        ctx.insert("eos_token".into(), json!(self.eos_token));
        ctx.insert("enable_thinking".into(), json!(true));
        ctx.insert("datetime".into(), json!(now.format("%b %d %Y").to_string()));
        ctx.insert(
            "date_string".into(),
            json!(now.format("%d %b %Y").to_string()),
        );
        for (k, v) in kwargs {
            ctx.insert(k.clone(), v.clone());
        }
        ctx.insert("add_generation_prompt".into(), json!(true));
        Value::Object(ctx)
    }

    /// Renders the messages with the generation prompt, as llama-server does.
    pub fn render(
        &self,
        messages: &[Message],
        kwargs: &Map<String, Value>,
    ) -> Result<String, TemplateError> {
        let env = environment();
        let source_name = self.origin.describe();
        let tmpl = env
            .template_from_str(&self.source)
            .map_err(|e| TemplateError::Syntax {
                source_name: source_name.clone(),
                message: describe(&e),
            })?;
        let ctx = minijinja::Value::from(minijinja::value::Serde(self.context(messages, kwargs)));
        let mut text = tmpl.render(ctx).map_err(|e| TemplateError::Render {
            source_name,
            message: describe(&e),
        })?;
        if self.add_bos && !self.bos_token.is_empty() && text.starts_with(&self.bos_token) {
            text.drain(..self.bos_token.len());
        }
        if self.add_eos && !self.eos_token.is_empty() && text.ends_with(&self.eos_token) {
            text.truncate(text.len() - self.eos_token.len());
        }
        Ok(text)
    }
}

/// minijinja's error with its detail, on one line.
fn describe(e: &JinjaError) -> String {
    let mut s = e.to_string();
    if let Some(d) = e.detail() {
        if !s.contains(d) {
            s = format!("{s} ({d})");
        }
    }
    if let Some(line) = e.line() {
        s = format!("{s} (line {line})");
    }
    s.replace('\n', " ")
}

/// A short, stable fingerprint of a rendered prompt (FNV-1a, 64 bits), recorded so two results can
/// be checked for the same prompt without storing it twice.
pub fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpl(source: &str) -> ChatTemplate {
        ChatTemplate {
            source: source.into(),
            origin: TemplateSource::Model,
            bos_token: "<s>".into(),
            eos_token: "</s>".into(),
            add_bos: true,
            add_eos: false,
        }
    }

    #[test]
    fn context_kwargs_and_python_methods() {
        let t = tmpl(
            "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content.strip() }}{% endfor %}\n{% if enable_thinking %}T{% else %}N{% endif %}{% if add_generation_prompt %}>{% endif %}",
        );
        let msgs = [Message::user("  hi  ")];
        assert_eq!(t.render(&msgs, &Map::new()).unwrap(), "[user]hiT>");
        let off = ChatOptions::from_flags(None, None, Some(false)).unwrap();
        assert_eq!(t.render(&msgs, &off.kwargs).unwrap(), "[user]hiN>");
    }

    #[test]
    fn raise_exception_and_bad_syntax_are_clear_errors() {
        let t = tmpl("{{ raise_exception('only user and assistant roles') }}");
        let e = t.render(&[], &Map::new()).unwrap_err().to_string();
        assert!(e.contains("only user and assistant roles"), "{e}");
        assert!(e.contains("--chat-template-file"), "{e}");
        let e = tmpl("{% if %}").render(&[], &Map::new()).unwrap_err();
        assert!(matches!(e, TemplateError::Syntax { .. }), "{e}");
    }

    #[test]
    fn kwargs_must_be_an_object() {
        assert!(ChatOptions::from_flags(None, Some("[1]"), None).is_err());
        let e = ChatOptions::from_flags(None, Some("{oops"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--chat-template-kwargs is not valid JSON"),
            "{e}"
        );
        let o = ChatOptions::from_flags(
            None,
            Some(r#"{"enable_thinking": true, "x": 1}"#),
            Some(false),
        )
        .unwrap();
        assert_eq!(o.kwargs["enable_thinking"], json!(false));
        assert_eq!(o.kwargs["x"], json!(1));
    }

    #[test]
    fn strftime_now_formats_today() {
        let t = tmpl("{{ strftime_now('%Y') }}");
        let year = chrono::Local::now().format("%Y").to_string();
        assert_eq!(t.render(&[], &Map::new()).unwrap(), year);
    }

    #[test]
    fn fingerprints_differ_by_one_byte() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint(""), "fnv1a64:cbf29ce484222325");
    }
}
