//! A loopback fixture server for fault tests: plain TCP or TLS (a self-signed certificate made in
//! the test with rcgen, served with rustls), `GET /v1/models` answered, every completion request
//! recorded (headers included) and answered by the test's handler, which writes raw bytes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

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

/// Answers the n-th completion request (0-based) by writing to the stream.
pub type Handler = dyn Fn(&Request, usize, &mut dyn Write) -> std::io::Result<()> + Send + Sync;

pub struct Fixture {
    pub url: String,
    /// Every request, `/v1/models` included.
    pub requests: Arc<Mutex<Vec<Request>>>,
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

fn read_request(reader: &mut dyn BufRead) -> Option<Request> {
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

fn serve(stream: &mut (impl Read + Write), requests: &Mutex<Vec<Request>>, handler: &Handler) {
    let req = {
        let mut reader = BufReader::new(&mut *stream);
        match read_request(&mut reader) {
            Some(r) => r,
            None => return,
        }
    };
    let n = {
        let mut all = requests.lock().unwrap();
        all.push(req.clone());
        all.iter().filter(|r| r.method == "POST").count()
    };
    let _ = if req.method == "GET" && req.path == "/v1/models" {
        let body =
            json!({"object": "list", "data": [{"id": "fixture-model", "owned_by": "fixture"}]});
        respond(stream, "200 OK", "", &body.to_string())
    } else {
        handler(&req, n.saturating_sub(1), stream)
    };
}

/// A plain-HTTP fixture.
pub fn start(
    handler: impl Fn(&Request, usize, &mut dyn Write) -> std::io::Result<()> + Send + Sync + 'static,
) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
    let (seen, handler): (_, Arc<Handler>) = (requests.clone(), Arc::new(handler));
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_nodelay(true);
            let (seen, handler) = (seen.clone(), handler.clone());
            thread::spawn(move || serve(&mut conn, &seen, &*handler));
        }
    });
    Fixture { url, requests }
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
    let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
    let (seen, handler): (_, Arc<Handler>) = (requests.clone(), Arc::new(handler));
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let (seen, handler, config) = (seen.clone(), handler.clone(), config.clone());
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(server) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(server, tcp);
                serve(&mut tls, &seen, &*handler);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    Fixture { url, requests }
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
