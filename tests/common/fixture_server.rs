//! A tiny loopback HTTP server (std::net) that speaks just enough OpenAI-compatible API for the HTTP
//! engine: `GET /v1/models`, and completions answered from a script, each request's body kept and
//! its arrival written to a log that several servers can share (to check their order).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

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

/// A running fixture server.
pub struct Fixture {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The completion request bodies it received, in order.
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

/// Reads one request: method, path and body.
pub fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn write_chunk(s: &mut TcpStream, data: &str) -> std::io::Result<()> {
    write!(s, "{:x}\r\n{data}\r\n", data.len())?;
    s.flush()
}

/// Writes `reply` and closes the connection.
pub fn answer(mut s: TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Status(status, body) => write!(
            s,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Reply::Stream(pieces, end) => {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )?;
            s.flush()?;
            for p in pieces {
                write_chunk(&mut s, &p)?;
                // Pacing, so that pieces arrive as separate reads (not a synchronisation).
                thread::sleep(Duration::from_millis(2));
            }
            match end {
                End::Done => {
                    write_chunk(&mut s, "data: [DONE]\n\n")?;
                    write!(s, "0\r\n\r\n")
                }
                End::NoDone => write!(s, "0\r\n\r\n"),
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
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = bodies.clone();
    let log = log.clone();
    let script = Arc::new(script);
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (seen, script, log) = (seen.clone(), script.clone(), log.clone());
            thread::spawn(move || {
                let Some((method, path, body)) = read_request(&mut conn) else {
                    return;
                };
                let reply = match (method.as_str(), path.as_str()) {
                    ("GET", "/health") => Reply::Status("200 OK", r#"{"status":"ok"}"#.into()),
                    ("GET", "/v1/models") => Reply::Status(
                        "200 OK",
                        json!({"object": "list", "data": [{"id": "fixture-model", "owned_by": owned_by}]}).to_string(),
                    ),
                    ("POST", "/v1/chat/completions") | ("POST", "/v1/completions") => {
                        let mut b = seen.lock().unwrap();
                        b.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        log.lock().unwrap().push(owned_by);
                        let n = b.len() - 1;
                        drop(b);
                        script(n)
                    }
                    _ => Reply::Status("404 Not Found", r#"{"error":{"code":404,"message":"File Not Found"}}"#.into()),
                };
                let _ = answer(conn, reply);
            });
        }
    });
    Fixture { url, bodies }
}
