//! The loopback fixture server of the tests (std::net, plus rustls for https): `GET /v1/models`
//! answered, every request recorded (headers and body), completions answered either from a script
//! of [`Reply`]s ([`fixture`], [`fixture_logged`], [`serve`]; several servers can share a log of the
//! order in which requests arrived) or by a handler that writes raw bytes, for faults ([`start`],
//! [`start_tls`] with a self-signed certificate made by rcgen).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

/// What a fixture server saw: the requests and their JSON bodies.
type Logs = (Arc<Mutex<Vec<Request>>>, Arc<Mutex<Vec<Value>>>);

// ---- requests

/// One request as the fixture saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running fixture server.
pub struct Fixture {
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub url: String,
    /// Every request, `/v1/models` included.
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// The completion request bodies as JSON (`Null` when not JSON), in order.
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

impl Fixture {
    /// The completion requests seen so far.
    pub fn completions(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST")
            .cloned()
            .collect()
    }
}

/// Records `req`; for a completion request (not a tokenizer request) also its JSON body. Returns
/// how many completion requests came before it.
fn record(req: &Request, requests: &Mutex<Vec<Request>>, bodies: &Mutex<Vec<Value>>) -> usize {
    let mut all = requests.lock().unwrap();
    all.push(req.clone());
    if req.method != "POST" || matches!(req.path.as_str(), "/apply-template" | "/tokenize") {
        return 0;
    }
    let mut b = bodies.lock().unwrap();
    b.push(serde_json::from_slice(&req.body).unwrap_or(Value::Null));
    b.len() - 1
}

/// Reads one request from a TCP connection.
pub fn read_request(stream: &mut TcpStream) -> Option<Request> {
    read_request_from(&mut BufReader::new(stream.try_clone().ok()?))
}

fn read_request_from(reader: &mut dyn BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().ok()?;
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

// ---- writing answers

/// A JSON response with `status` ("200 OK") and extra header lines.
pub fn respond(w: &mut dyn Write, status: &str, extra: &str, body: &str) -> std::io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )?;
    w.flush()
}

/// The head of a chunked SSE response.
pub fn stream_head(w: &mut dyn Write) -> std::io::Result<()> {
    write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    w.flush()
}

/// One chunk of a chunked body.
pub fn chunk(w: &mut dyn Write, data: &[u8]) -> std::io::Result<()> {
    write!(w, "{:x}\r\n", data.len())?;
    w.write_all(data)?;
    write!(w, "\r\n")?;
    w.flush()
}

/// The end of a chunked body.
pub fn end(w: &mut dyn Write) -> std::io::Result<()> {
    write!(w, "0\r\n\r\n")?;
    w.flush()
}

/// A text delta event.
pub fn delta(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
    )
}

/// The events of a whole answer of `n` one-token deltas, with usage and `[DONE]`.
pub fn answer_events(n: u64) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&delta(&format!("t{i} ")));
    }
    s.push_str(&format!(
        "data: {}\n\n",
        json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": n}})
    ));
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

/// A whole good streamed answer of `n` tokens.
pub fn good(w: &mut dyn Write, n: u64) -> std::io::Result<()> {
    stream_head(w)?;
    chunk(w, &answer_events(n))?;
    end(w)
}

// ---- a server answering from a script

/// How a fixture answers the n-th completion request (0-based).
#[derive(Clone)]
pub enum Reply {
    /// A plain response with this status line and body.
    Status(&'static str, String),
    /// A chunked SSE stream: these pieces (written with a short pause between them), then the end.
    Stream(Vec<String>, End),
}

/// How a streamed reply ends.
#[derive(Clone, Copy)]
pub enum End {
    /// `data: [DONE]` and a proper end of the chunked body.
    Done,
    /// A proper end of the chunked body, no `[DONE]` (unless the pieces hold one).
    NoDone,
    /// The socket closes inside the body.
    Die,
}

/// Completion requests in the order they arrived, as `name` of the server that took each.
pub type RequestLog = Arc<Mutex<Vec<&'static str>>>;

/// Writes `reply` and closes the connection.
pub fn answer(mut s: TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Status(status, body) => respond(&mut s, status, "", &body),
        Reply::Stream(pieces, how) => {
            stream_head(&mut s)?;
            for p in pieces {
                chunk(&mut s, p.as_bytes())?;
                // Pacing, so that pieces arrive as separate reads (not a synchronisation).
                thread::sleep(Duration::from_millis(2));
            }
            match how {
                End::Done => {
                    chunk(&mut s, b"data: [DONE]\n\n")?;
                    end(&mut s)
                }
                End::NoDone => end(&mut s),
                End::Die => s.shutdown(std::net::Shutdown::Both),
            }
        }
    }
}

/// Starts a fixture that says it is `owned_by` and answers completions with `script(n)`.
pub fn fixture(
    owned_by: &'static str,
    script: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> Fixture {
    fixture_logged(owned_by, &RequestLog::default(), script)
}

/// [`fixture`], writing `owned_by` into `log` as each completion request arrives.
pub fn fixture_logged(
    owned_by: &'static str,
    log: &RequestLog,
    script: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> Fixture {
    serve(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        owned_by,
        log,
        script,
    )
}

/// Serves on `listener` as [`fixture_logged`] does (`GET /health` answers 200 too).
pub fn serve(
    listener: TcpListener,
    owned_by: &'static str,
    log: &RequestLog,
    script: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> Fixture {
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (requests, bodies): Logs = Default::default();
    let (seen, seen_bodies) = (requests.clone(), bodies.clone());
    let log = log.clone();
    let script = Arc::new(script);
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (seen, seen_bodies, script, log) = (
                seen.clone(),
                seen_bodies.clone(),
                script.clone(),
                log.clone(),
            );
            thread::spawn(move || {
                let Some(req) = read_request(&mut conn) else {
                    return;
                };
                let n = record(&req, &seen, &seen_bodies);
                let reply = match (req.method.as_str(), req.path.as_str()) {
                    ("GET", "/health") => Reply::Status("200 OK", r#"{"status":"ok"}"#.into()),
                    ("GET", "/v1/models") => Reply::Status(
                        "200 OK",
                        json!({"object": "list", "data": [{"id": "fixture-model", "owned_by": owned_by}]}).to_string(),
                    ),
                    ("POST", "/apply-template") | ("POST", "/tokenize") => {
                        let (status, body) = tokenizer_reply(&req)
                            .unwrap_or(("400 Bad Request", r#"{"error":"bad request"}"#.into()));
                        Reply::Status(status, body)
                    }
                    ("POST", "/v1/chat/completions") | ("POST", "/v1/completions") => {
                        log.lock().unwrap().push(owned_by);
                        script(n)
                    }
                    _ => Reply::Status("404 Not Found", r#"{"error":{"code":404,"message":"File Not Found"}}"#.into()),
                };
                let _ = answer(conn, reply);
            });
        }
    });
    Fixture {
        url,
        requests,
        bodies,
    }
}

// ---- tokenizer endpoints: llama-server's /apply-template and /tokenize, vLLM's /tokenize

/// The fixture's chat template around one user message.
pub fn template(content: &str) -> String {
    format!("<|user|> {content} <|end|> <|assistant|>")
}

/// The fixture's tokenizer: one id per whitespace-separated word (100 + its length in bytes),
/// after a 1 when special tokens are added.
pub fn fixture_ids(text: &str, add_special: bool) -> Vec<i64> {
    let words = text.split_whitespace().map(|w| 100 + w.len() as i64);
    (add_special.then_some(1))
        .into_iter()
        .chain(words)
        .collect()
}

/// The answer of the tokenizer endpoints to `req` (status, JSON body), `None` for other paths.
/// `/tokenize` takes llama-server's `content` (+ `add_special`, default false) and vLLM's `prompt`
/// (+ `add_special_tokens`, default true) or `messages` (templated, no special tokens added).
pub fn tokenizer_reply(req: &Request) -> Option<(&'static str, String)> {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let message = || body["messages"][0]["content"].as_str().map(template);
    let answer = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/apply-template") => json!({"prompt": message()?}),
        ("POST", "/tokenize") => {
            let ids = if let Some(text) = message() {
                fixture_ids(&text, false)
            } else if let Some(c) = body["content"].as_str() {
                fixture_ids(c, body["add_special"].as_bool().unwrap_or(false))
            } else {
                let p = body["prompt"].as_str()?;
                fixture_ids(p, body["add_special_tokens"].as_bool().unwrap_or(true))
            };
            json!({"tokens": ids, "count": ids.len()})
        }
        _ => return None,
    };
    Some(("200 OK", answer.to_string()))
}

// ---- a server answering with a handler that writes raw bytes (faults, https)

/// Answers the n-th completion request (0-based) by writing to the stream.
pub type Handler = dyn Fn(&Request, usize, &mut dyn Write) -> std::io::Result<()> + Send + Sync;

fn serve_connection(
    stream: &mut (impl Read + Write),
    requests: &Mutex<Vec<Request>>,
    bodies: &Mutex<Vec<Value>>,
    handler: &Handler,
) {
    let req = {
        let mut reader = BufReader::new(&mut *stream);
        match read_request_from(&mut reader) {
            Some(r) => r,
            None => return,
        }
    };
    let n = record(&req, requests, bodies);
    let _ = if req.method == "GET" && req.path == "/v1/models" {
        let body =
            json!({"object": "list", "data": [{"id": "fixture-model", "owned_by": "fixture"}]});
        respond(stream, "200 OK", "", &body.to_string())
    } else {
        handler(&req, n, stream)
    };
}

/// A plain-HTTP fixture.
pub fn start(
    handler: impl Fn(&Request, usize, &mut dyn Write) -> std::io::Result<()> + Send + Sync + 'static,
) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (requests, bodies): Logs = Default::default();
    let (seen, seen_bodies, handler): (_, _, Arc<Handler>) =
        (requests.clone(), bodies.clone(), Arc::new(handler));
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_nodelay(true);
            let (seen, seen_bodies, handler) = (seen.clone(), seen_bodies.clone(), handler.clone());
            thread::spawn(move || serve_connection(&mut conn, &seen, &seen_bodies, &*handler));
        }
    });
    Fixture {
        url,
        requests,
        bodies,
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, certificate DER, key
/// DER).
pub fn self_signed() -> (String, Vec<u8>, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".into()])
        .unwrap();
    (
        ck.cert.pem(),
        ck.cert.der().to_vec(),
        ck.key_pair.serialize_der(),
    )
}

/// An https fixture with the certificate of [`self_signed`].
pub fn start_tls(
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    handler: impl Fn(&Request, usize, &mut dyn Write) -> std::io::Result<()> + Send + Sync + 'static,
) -> Fixture {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let (requests, bodies): Logs = Default::default();
    let (seen, seen_bodies, handler): (_, _, Arc<Handler>) =
        (requests.clone(), bodies.clone(), Arc::new(handler));
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let (seen, seen_bodies, handler, config) = (
                seen.clone(),
                seen_bodies.clone(),
                handler.clone(),
                config.clone(),
            );
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(server) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(server, tcp);
                serve_connection(&mut tls, &seen, &seen_bodies, &*handler);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    Fixture {
        url,
        requests,
        bodies,
    }
}

/// A port on which nothing listens.
pub fn closed_port_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// Parses a results file's JSON for tests.
pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}
