//! A loopback server that streams completions at a known fixed rate, for
//! `scripts/bench-http-client.sh`: `GET /v1/models` names a model with a vocabulary, every
//! `POST /v1/completions` gets `max_tokens` one-token chunks, token `i` written at `i × period`
//! after the first (absolute deadlines, so the true mean gap is the period exactly).
//!
//! Usage: `fixed_rate_server PERIOD_US [LOG]` prints `http://127.0.0.1:PORT` and serves until
//! killed; with LOG, one line per request: its `seed`, then each gap between the server's writes of
//! consecutive tokens in microseconds (the true gaps the client should measure).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn chunk(w: &mut impl Write, data: &str) -> std::io::Result<()> {
    write!(w, "{:x}\r\n{data}\r\n", data.len())?;
    w.flush()
}

type Log = Option<Arc<Mutex<std::fs::File>>>;

fn number(text: &str, key: &str) -> Option<u64> {
    text.split(key)
        .nth(1)
        .and_then(|t| {
            t.split(|c: char| !c.is_ascii_digit())
                .find(|x| !x.is_empty())
        })
        .and_then(|t| t.parse().ok())
}

fn serve(mut s: TcpStream, period: Duration, log: Log) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let get = line.starts_with("GET");
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    if get {
        let b = r#"{"object":"list","data":[{"id":"fixed-rate","owned_by":"fixture","meta":{"n_vocab":32000}}]}"#;
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        )?;
        return s.flush();
    }
    let text = String::from_utf8_lossy(&body);
    let n = number(&text, "\"max_tokens\":").unwrap_or(16);
    let seed = number(&text, "\"seed\":").unwrap_or(0);
    let mut sent = Vec::with_capacity(n as usize);
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    let start = Instant::now();
    for i in 0..n {
        let due = start + period * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        chunk(
            &mut s,
            &format!("data: {{\"choices\":[{{\"index\":0,\"text\":\"t{i} \",\"finish_reason\":null}}]}}\n\n"),
        )?;
        sent.push(Instant::now());
    }
    if let Some(log) = log {
        let gaps: Vec<String> = sent
            .windows(2)
            .map(|w| (w[1] - w[0]).as_micros().to_string())
            .collect();
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{seed} {}", gaps.join(" "));
        }
    }
    chunk(
        &mut s,
        &format!("data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":8,\"completion_tokens\":{n}}}}}\n\ndata: [DONE]\n\n"),
    )?;
    write!(s, "0\r\n\r\n")?;
    s.flush()
}

fn main() {
    let period_us: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let period = Duration::from_micros(period_us);
    let log: Log = std::env::args().nth(2).map(|p| {
        Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("open the log"),
        ))
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    println!("http://127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    for conn in listener.incoming().flatten() {
        let log = log.clone();
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                let _ = serve(conn, period, log);
            })
            .ok();
    }
}
