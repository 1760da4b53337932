//! The printed report of `--compare-http`: in-process against HTTP, prompt by prompt.

use std::fmt::Write;

use crate::results::http_comparison::{HttpComparison, Spread};

fn signed(x: f64, digits: usize) -> String {
    format!("{x:+.digits$}")
}

/// The printed report: per prompt, both sides, the difference with its interval, the HTTP side
/// taken apart, and whether the texts match.
pub fn render(c: &HttpComparison) -> String {
    let mut out = String::new();
    let rule = "=".repeat(100);
    let pct = (c.confidence * 100.0).round();
    let _ = writeln!(out, "{rule}");
    let engine = if c.inprocess_key == "vllm" {
        "vLLM"
    } else {
        "llama.cpp"
    };
    let _ = writeln!(
        out,
        "IN-PROCESS vs HTTP · {engine} in-process ({}) vs {}{} {}{}",
        c.inprocess_key,
        c.server.name.as_deref().unwrap_or("llama-server"),
        c.server.build.map(|b| format!(" b{b}")).unwrap_or_default(),
        c.server.url,
        c.server.endpoint
    );
    let _ = writeln!(
        out,
        "difference = HTTP − in-process with its {pct}% confidence interval (Welch); ratio = HTTP / in-process"
    );
    if let Some(p) = &c.pairing {
        let how = if p.mode == "blocks" {
            "blocks: every in-process run, then every HTTP run (drift between the blocks is not cancelled)"
        } else {
            "interleaved run by run, order alternating in-process/HTTP, HTTP/in-process (ABBA)"
        };
        let _ = writeln!(out, "pairing: {how}; {}", p.reason);
    }
    let _ = writeln!(out, "{rule}");
    let rows = [
        ("ttft_ms", "TTFT ms", 2),
        ("ttfo_ms", "TTFO ms", 2),
        ("itl_mean_ms", "ITL ms", 3),
        ("tps", "TPS tok/s", 1),
        ("e2e_latency_ms", "E2E ms", 1),
        ("total_ms", "total ms", 1),
    ];
    for (name, p) in &c.prompts {
        let tokens = p
            .metrics
            .get("tokens_generated")
            .map(|m| (m.inprocess.mean, m.http.mean));
        let _ = writeln!(
            out,
            "{name}: {} generated tokens; prompt tokens {}",
            tokens.map_or("-".into(), |(a, b)| if a == b {
                format!("{a:.0}")
            } else {
                format!("{a:.1} in-process / {b:.1} HTTP")
            }),
            match p.prompt_tokens {
                [Some(a), Some(b)] if a == b => format!("{a}, the same both ways"),
                [a, b] => format!(
                    "{} in-process / {} HTTP",
                    a.map_or("-".into(), |x| x.to_string()),
                    b.map_or("-".into(), |x| x.to_string())
                ),
            }
        );
        let _ = writeln!(
            out,
            "  {:<10} {:>18} {:>18} {:>30} {:>8}",
            "metric",
            "in-process",
            "HTTP",
            format!("difference [{pct}% CI]"),
            "ratio"
        );
        for (key, label, d) in rows {
            let Some(m) = p.metrics.get(key) else {
                continue;
            };
            let (diff, ratio) = match &m.welch {
                Some(w) => (
                    format!(
                        "{} [{}, {}]{}",
                        signed(w.difference, d),
                        signed(w.difference_ci_low, d),
                        signed(w.difference_ci_high, d),
                        if w.within_noise { " ~" } else { "  " }
                    ),
                    format!("{:.3}", w.ratio),
                ),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "  {:<10} {:>18} {:>18} {:>30} {:>8}",
                label,
                format!("{:.d$} ± {:.d$}", m.inprocess.mean, m.inprocess.std),
                format!("{:.d$} ± {:.d$}", m.http.mean, m.http.std),
                diff,
                ratio
            );
        }
        if let Some(s) = &p.http_split {
            let _ = writeln!(out, "  HTTP taken apart (means):");
            let _ = writeln!(
                out,
                "    first token  in-process {:.2} ms · server prompt_ms {:.2} ({}) · client {:.2} ({} on top of the server)",
                s.ttft.inprocess_ms,
                s.ttft.server_ms,
                signed(s.ttft.server_minus_inprocess_ms, 2),
                s.ttft.http_ms,
                signed(s.ttft.client_overhead_ms, 2)
            );
            let _ = writeln!(
                out,
                "    per token    in-process {:.3} ms · server predicted_ms/(n−1) {:.3} ({}) · client {:.3} ({} on top of the server)",
                s.per_token.inprocess_ms,
                s.per_token.server_ms,
                signed(s.per_token.server_minus_inprocess_ms, 3),
                s.per_token.http_ms,
                signed(s.per_token.client_overhead_ms, 3)
            );
            let t = &s.per_token;
            let _ = writeln!(
                out,
                "    per-token phases: server compute {:.3} ms (the same work in-process{}) + server overhead {} + transport and client {} = client {:.3} ms",
                t.inprocess_ms,
                t.inprocess_engine_ms
                    .map_or(String::new(), |d| format!(", decode {d:.3}")),
                signed(t.server_minus_inprocess_ms, 3),
                signed(t.client_overhead_ms, 3),
                t.http_ms
            );
            if let (Some(pe), Some(ev)) =
                (s.ttft.inprocess_engine_ms, s.per_token.inprocess_engine_ms)
            {
                let _ = writeln!(
                    out,
                    "    in-process llama.cpp counters: prompt eval {:.2} ms of TTFT {:.2} ({:.1} %) · decode {:.3} ms of ITL {:.3} per token ({:.1} %; the rest samples and detokenizes)",
                    pe,
                    s.ttft.inprocess_ms,
                    100.0 * pe / s.ttft.inprocess_ms,
                    ev,
                    s.per_token.inprocess_ms,
                    100.0 * ev / s.per_token.inprocess_ms
                );
            }
            let f = |x: &Option<Spread>| x.map_or("-".into(), |s| format!("{:.2} ms", s.mean));
            let _ = writeln!(
                out,
                "    response headers at {} · first byte at {} · stream end {} after the last token",
                f(&s.headers_ms),
                f(&s.first_byte_ms),
                f(&s.stream_tail_ms)
            );
        }
        if let Some(o) = &p.order_effect {
            let show = |w: &Option<crate::measure::significance::Welch>, d: usize| match w {
                Some(w) => format!(
                    "{} [{}, {}]{}",
                    signed(w.difference, d),
                    signed(w.difference_ci_low, d),
                    signed(w.difference_ci_high, d),
                    if w.within_noise {
                        " ~"
                    } else {
                        " ORDER MATTERS"
                    }
                ),
                None => "-".into(),
            };
            let _ = writeln!(
                out,
                "  order: in-process first in {} rounds, HTTP first in {}; difference (HTTP first − in-process first): TTFT {} ms · ITL {} ms",
                o.inprocess_first_rounds,
                o.http_first_rounds,
                show(&o.ttft_ms, 2),
                show(&o.itl_mean_ms, 3)
            );
        }
        let [na, nb] = p.runs_compared;
        if p.same_text {
            let _ = writeln!(
                out,
                "  text: identical both ways ({nb}/{nb} HTTP runs, {na}/{na} in-process runs)"
            );
        } else {
            let _ = writeln!(
                out,
                "  text: DIFFERS ({}/{nb} HTTP runs and {}/{na} in-process runs match the first in-process run)",
                p.http_runs_matching, p.inprocess_runs_matching
            );
            if let Some(d) = &p.first_difference {
                let _ = writeln!(
                    out,
                    "    {} parts at character {}: in-process {:?} vs {:?}",
                    d.run, d.at_char, d.inprocess, d.other
                );
            }
        }
        if let Some(line) = chat_prompt_line(p) {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "~ marks a difference within noise (the interval contains 0). Results keys: {} (in-process), {} (HTTP).",
        c.inprocess_key, c.http_key
    );
    out
}

/// `--api chat`: whether the server rendered the in-process prompt from the same messages.
fn chat_prompt_line(p: &crate::results::http_comparison::PromptComparison) -> Option<String> {
    let c = p.chat_prompt.as_ref()?;
    let tokens = match (c.inprocess_prompt_tokens, c.server_prompt_tokens) {
        (Some(a), Some(b)) if a == b => format!("{a} tokens both"),
        (a, b) => format!(
            "{} tokens in-process / {} server",
            a.map_or("-".into(), |x| x.to_string()),
            b.map_or("-".into(), |x| x.to_string())
        ),
    };
    let bytes = match c.server_bytes {
        Some(b) if b != c.inprocess_bytes => format!("{} / {b} bytes", c.inprocess_bytes),
        _ => format!("{} bytes", c.inprocess_bytes),
    };
    Some(format!(
        "  chat prompt: {} ({bytes}, {tokens}; compared {})",
        if c.equal {
            "the server renders the same prompt"
        } else {
            "DIFFERS from the server's rendering"
        },
        c.compared
    ))
}
