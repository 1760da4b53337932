//! A loopback server that streams completions at a known fixed rate, for
//! `scripts/bench-http-client.sh`: `GET /v1/models` names a model with a vocabulary, every
//! `POST /v1/completions` gets `max_tokens` one-token chunks, token `i` written at `i × period`
//! after the first (absolute deadlines, so the true mean gap is the period exactly).
//!
//! Usage: `fixed_rate_server PERIOD_US` prints `http://127.0.0.1:PORT` and serves until killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn chunk(w: &mut impl Write, data: &str) -> std::io::Result<()> {
    write!(w, "{:x}\r\n{data}\r\n", data.len())?;
    w.flush()
}

fn serve(mut s: TcpStream, period: Duration) -> std::io::Result<()> {
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
    let n: u64 = text
        .split("\"max_tokens\":")
        .nth(1)
        .and_then(|t| {
            t.split(|c: char| !c.is_ascii_digit())
                .find(|x| !x.is_empty())
        })
        .and_then(|t| t.parse().ok())
        .unwrap_or(16);
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
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    println!("http://127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    for conn in listener.incoming().flatten() {
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                let _ = serve(conn, period);
            })
            .ok();
    }
}
