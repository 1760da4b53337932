//! Chat templates: the model's own Jinja template and templates in the shapes real models use
//! (`tests/fixtures/templates/`: ChatML with a thinking switch like Qwen3, Llama 3, Gemma) render
//! the expected prompts, and the in-process rendering is byte for byte what the real llama-server
//! renders for the same messages (its `/apply-template`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use inproc_bench::engine::llamacpp::{LlamaCppEngine, LlamaCppSettings};
use inproc_bench::engine::{Engine, PromptMode};
use inproc_bench::prompts::PromptSpec;
use inproc_bench::template::{ChatOptions, ChatTemplate, Message, TemplateSource};
use serde_json::{json, Map, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/templates")
        .join(name)
}

fn template(name: &str, bos: &str, eos: &str) -> ChatTemplate {
    let path = fixture(name);
    ChatTemplate {
        source: std::fs::read_to_string(&path).unwrap(),
        origin: TemplateSource::File(path),
        bos_token: bos.into(),
        eos_token: eos.into(),
        add_bos: false,
        add_eos: false,
    }
}

fn kwargs(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn chatml_with_a_thinking_switch_renders_as_qwen3_does() {
    let t = template("chatml-thinking.jinja", "", "<|im_end|>");
    let msgs = [Message::user("Why is the sky blue?")];
    let on = t.render(&msgs, &Map::new()).unwrap();
    assert_eq!(
        on,
        "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n"
    );
    let off = t
        .render(&msgs, &kwargs(json!({"enable_thinking": false})))
        .unwrap();
    assert_eq!(
        off,
        "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    );
    // A system message first, and an earlier answer whose reasoning is cut (Python's strip,
    // split and lstrip through the Python-compatible methods).
    let convo = [
        Message {
            role: "system".into(),
            content: "  Be brief. ".into(),
        },
        Message::user("Hi"),
        Message {
            role: "assistant".into(),
            content: "<think>\nhmm\n</think>\n\nHello!".into(),
        },
        Message::user("Bye"),
    ];
    assert_eq!(
        t.render(&convo, &Map::new()).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn llama3_writes_bos_and_the_date_from_the_context() {
    let mut t = template("llama3.jinja", "<|begin_of_text|>", "<|eot_id|>");
    let msgs = [Message::user(" What is 2+2? ")];
    let date = kwargs(json!({"date_string": "26 Jul 2024"}));
    let expected = "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_eq!(
        t.render(&msgs, &date).unwrap(),
        format!("<|begin_of_text|>{expected}")
    );
    // A tokenizer that adds BOS itself: the rendered BOS text is cut, as llama-server cuts it.
    t.add_bos = true;
    assert_eq!(t.render(&msgs, &date).unwrap(), expected);
    // Without the argument the template sees llama-server's date_string (today).
    let today = chrono_free_today(&t.render(&msgs, &Map::new()).unwrap());
    assert!(today.len() == 11, "date_string like '01 Dec 2026': {today}");
}

/// The `Today Date:` line of a rendered Llama 3 prompt.
fn chrono_free_today(rendered: &str) -> String {
    rendered
        .split("Today Date: ")
        .nth(1)
        .and_then(|r| r.split('\n').next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn gemma_maps_roles_and_raises_on_a_system_message() {
    let t = template("gemma.jinja", "<bos>", "<eos>");
    let msgs = [Message::user("Hello  ")];
    assert_eq!(
        t.render(&msgs, &Map::new()).unwrap(),
        "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    );
    let sys = [
        Message {
            role: "system".into(),
            content: "x".into(),
        },
        Message::user("Hello"),
    ];
    let e = t.render(&sys, &Map::new()).unwrap_err().to_string();
    assert!(e.contains("System role not supported"), "{e}");
    assert!(e.contains("--chat-template-file"), "{e}");
}

fn settings() -> LlamaCppSettings {
    common::llama_settings(2048, 1)
}

fn prompt(text: &str) -> PromptSpec {
    PromptSpec {
        name: "p".into(),
        prompt: text.into(),
        max_tokens: 8,
        description: None,
    }
}

fn chat(options: ChatOptions) -> PromptMode {
    PromptMode::Chat {
        template: None,
        options,
    }
}

/// The prompts the comparison sends: the built-in set, and text that a template could mangle.
fn messages() -> Vec<String> {
    let mut v: Vec<String> = inproc_bench::prompts::builtin()
        .into_iter()
        .map(|p| p.prompt)
        .collect();
    v.push("  spaces around, a\nnew line, quotes \" ' and unicode: héllo 日本 🙂  ".into());
    v
}

#[test]
fn the_default_model_renders_its_own_template_with_its_system_prompt() {
    let mut engine = LlamaCppEngine::load(settings()).unwrap();
    let p = engine
        .prepare(&prompt("Hi there"), &chat(ChatOptions::default()))
        .unwrap();
    assert_eq!(
        p.text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    );
    let details = engine.info().details;
    assert_eq!(
        details["chat_template"],
        json!("model (tokenizer.chat_template, Jinja)")
    );
    assert!(details["chat_template_fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("fnv1a64:"));
    // SmolLM2 does not reason: no think markers, nothing about reasoning recorded.
    assert!(!details.contains_key("think_markers"));
    // The built-in name keeps llama.cpp's own template (which has no system prompt).
    let named = PromptMode::Chat {
        template: Some("chatml".into()),
        options: ChatOptions::default(),
    };
    let p = engine.prepare(&prompt("Hi there"), &named).unwrap();
    assert_eq!(
        p.text,
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        engine.info().details["chat_template"],
        json!("llama.cpp built-in chatml")
    );
}

#[test]
fn a_bad_template_file_is_one_clear_error() {
    let out = run(&[
        "--model",
        s(&model()),
        "--chat-template-file",
        "/nonexistent/template.jinja",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--max-tokens",
        "2",
    ]);
    assert_clean_error(&out, "--chat-template-file /nonexistent/template.jinja");
    let out = run(&[
        "--model",
        s(&model()),
        "--chat-template-kwargs",
        "{enable_thinking: false}",
    ]);
    assert_clean_error(&out, "--chat-template-kwargs");
}

/// A llama-server on a free loopback port, stopped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(extra: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new(llama_server())
        .args([
            "--model",
            s(&model()),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--ctx-size",
            "512",
            "--threads",
            "1",
            "--parallel",
            "1",
            "--no-webui",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llama-server starts");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(v) = get(&format!("{}/health", server.url)) {
            if v["status"] == "ok" {
                return server;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("llama-server did not become ready in 60 s");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn get(url: &str) -> Result<Value, reqwest::Error> {
    runtime().block_on(async { reqwest::get(url).await?.json().await })
}

/// What llama-server renders for one user message (`/apply-template`).
fn apply_template(server: &Server, text: &str, kwargs: Option<Value>) -> String {
    let mut body = json!({"messages": [{"role": "user", "content": text}]});
    if let Some(k) = kwargs {
        body["chat_template_kwargs"] = k;
    }
    let v: Value = runtime()
        .block_on(async {
            reqwest::Client::new()
                .post(format!("{}/apply-template", server.url))
                .json(&body)
                .send()
                .await?
                .json()
                .await
        })
        .unwrap();
    v["prompt"]
        .as_str()
        .unwrap_or_else(|| panic!("no prompt in {v}"))
        .to_string()
}

#[test]
fn in_process_prompts_are_byte_equal_to_llama_servers() {
    let mut engine = LlamaCppEngine::load(settings()).unwrap();
    {
        let server = start_server(&[]);
        for text in messages() {
            let ours = engine
                .prepare(&prompt(&text), &chat(ChatOptions::default()))
                .unwrap()
                .text;
            assert_eq!(ours, apply_template(&server, &text, None), "model template");
        }
    }
    // A template file with a thinking switch, given to both sides, and its argument passed the
    // same way: in-process in the context, to the server per request.
    let file = fixture("chatml-thinking.jinja");
    let server = start_server(&["--chat-template-file", s(&file)]);
    for thinking in [None, Some(false), Some(true)] {
        let options = ChatOptions::from_flags(Some(file.clone()), None, thinking).unwrap();
        let sent = options
            .has_kwargs()
            .then(|| Value::Object(options.kwargs.clone()));
        for text in messages() {
            let ours = engine
                .prepare(&prompt(&text), &chat(options.clone()))
                .unwrap()
                .text;
            assert_eq!(
                ours,
                apply_template(&server, &text, sent.clone()),
                "template file, thinking {thinking:?}"
            );
        }
    }
}
