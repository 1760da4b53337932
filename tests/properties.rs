//! Hostile input, property-tested: the SSE parser (any bytes, any split of them into pieces gives
//! the same events; a line over the limit is an error, not unbounded memory), the results reader
//! (any bytes or JSON: an error naming the file, never a panic; what it accepts can be reported),
//! prompt files, the range/list parser of sweep flags, and the GGUF reader under the model check (random bytes,
//! every truncation of the real model). Case counts are small here; `PROPTEST_CASES=N` (as
//! `scripts/fuzz.sh` sets it) runs more.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use inproc_bench::engine::http::sse::{self, SseEvent, SseParser};
use inproc_bench::engine::llamacpp::check_gguf_file;
use inproc_bench::gguf;
use inproc_bench::plan::parse_list;
use inproc_bench::prompts::{self, PromptSpec};
use inproc_bench::report::Format;
use inproc_bench::results::read;
use proptest::prelude::*;

/// `cases` unless `PROPTEST_CASES` asks for another count; no regression files in the tree.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that look like an event stream often enough to reach every branch of the parser.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: error".to_vec()),
        Just(b"error: {\"message\":\"x\"}".to_vec()),
        Just(b": ping".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"[DONE]".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(br#"{"choices":[{"delta":{"content":"hi"}}],"timings":{"predicted_n":2}}"#.to_vec()),
        Just("é世".as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Parses `bytes` cut at `cuts` (positions taken modulo the length) with a parser of `limit`.
fn parse_split(bytes: &[u8], cuts: &[usize], limit: usize) -> (Vec<SseEvent>, SseParser) {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut parser = SseParser::with_limit(limit);
    let mut out = Vec::new();
    let mut prev = 0;
    for c in at.into_iter().chain([bytes.len()]) {
        parser.feed(&bytes[prev..c], &mut out);
        prev = c;
    }
    (out, parser)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn sse_any_split_gives_the_same_events(
        bytes in sse_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        limit in prop_oneof![Just(sse::MAX_LINE), 8usize..64],
    ) {
        let (whole, p1) = parse_split(&bytes, &[], limit);
        let (split, p2) = parse_split(&bytes, &cuts, limit);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(p1.overflow(), p2.overflow());
        prop_assert_eq!(p1.comments(), p2.comments());
        prop_assert_eq!(p1.has_partial(), p2.has_partial());
        for ev in &whole {
            prop_assert!(ev.data.len() <= limit);
            let _ = sse::decode(ev); // any data: a payload or an error, never a panic
        }
    }

    #[test]
    fn sse_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let (events, _) = parse_split(&bytes, &[1, 7, 100], sse::MAX_LINE);
        for ev in &events {
            let _ = sse::decode(ev);
        }
    }

    #[test]
    fn sse_a_line_over_the_limit_is_an_error_and_keeps_nothing(
        limit in 16usize..256,
        extra in 1usize..256,
        piece in 1usize..64,
    ) {
        let line = vec![b'x'; limit + extra];
        let mut parser = SseParser::with_limit(limit);
        let mut out = Vec::new();
        parser.feed(b"data: ok\n\n", &mut out);
        for p in line.chunks(piece) {
            parser.feed(p, &mut out);
        }
        parser.feed(b"\n\ndata: after\n\n", &mut out);
        prop_assert_eq!(parser.overflow().map(|e| e.limit), Some(limit));
        prop_assert!(!parser.has_partial(), "nothing is kept after the overflow");
        prop_assert_eq!(out.len(), 1, "events before the overflow only");
    }

    #[test]
    fn results_reader_any_text_is_a_file_or_an_error_naming_it(text in ".{0,400}") {
        if let Err(e) = read::parse(Path::new("hostile.json"), &text) {
            prop_assert!(e.to_string().contains("hostile.json"), "{}", e);
        }
    }

    #[test]
    fn results_reader_any_json_is_a_file_or_an_error_naming_it(v in json_value()) {
        let text = v.to_string();
        match read::parse(Path::new("hostile.json"), &text) {
            Err(e) => prop_assert!(e.to_string().contains("hostile.json"), "{}", e),
            Ok(file) => render_all(&file),
        }
    }

    #[test]
    fn results_reader_a_damaged_real_file_is_read_or_refused_by_name(
        at in any::<prop::sample::Index>(),
        len in 0usize..64,
        junk in "[\\[\\]{}\":,0-9a-z\\-. ]{0,8}",
    ) {
        let good = real_results();
        let mut start = at.index(good.len());
        while !good.is_char_boundary(start) {
            start -= 1;
        }
        let end = (start + len).min(good.len());
        let mut damaged = good[..start].to_string();
        damaged.push_str(&junk);
        // Cut only at character boundaries: the reader gets text.
        let mut e = end;
        while !good.is_char_boundary(e) {
            e += 1;
        }
        damaged.push_str(&good[e..]);
        match read::parse(Path::new("damaged.json"), &damaged) {
            Err(e) => prop_assert!(e.to_string().contains("damaged.json"), "{}", e),
            Ok(file) => render_all(&file),
        }
    }

    #[test]
    fn results_reader_any_bytes_in_a_file_is_an_error_naming_it(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bytes.json");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = read::read(&path) {
            prop_assert!(e.to_string().contains("bytes.json"), "{}", e);
        }
    }

    #[test]
    fn prompt_files_of_any_bytes_load_or_name_the_file(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts.json");
        std::fs::write(&path, &bytes).unwrap();
        match prompts::load_file(&path) {
            Err(e) => prop_assert!(e.to_string().contains("prompts.json"), "{}", e),
            Ok(set) => {
                prop_assert!(!set.is_empty());
                prop_assert!(set.iter().all(|p| p.max_tokens > 0));
            }
        }
    }

    #[test]
    fn prompt_files_round_trip_as_json_and_json_lines(set in prompt_set()) {
        let dir = tempfile::tempdir().unwrap();
        let array = dir.path().join("a.json");
        std::fs::write(&array, serde_json::to_string(&set).unwrap()).unwrap();
        prop_assert_eq!(&prompts::load_file(&array).unwrap(), &set);
        let lines = dir.path().join("l.jsonl");
        let text: Vec<String> = set.iter().map(|p| serde_json::to_string(p).unwrap()).collect();
        std::fs::write(&lines, text.join("\n")).unwrap();
        prop_assert_eq!(&prompts::load_file(&lines).unwrap(), &set);
    }

    #[test]
    fn sweep_lists_of_any_text_parse_or_name_the_flag(s in "\\PC{0,40}") {
        for r in [
            parse_list::<u32>("--threads", &s).map(|v| v.len()),
            parse_list::<i32>("--n-gpu-layers", &s).map(|v| v.len()),
        ] {
            match r {
                Ok(n) => prop_assert!(n <= 64 * inproc_bench::plan::MAX_RANGE_ITEMS as usize),
                Err(e) => prop_assert!(e.to_string().starts_with("--"), "{}", e),
            }
        }
    }

    #[test]
    fn sweep_lists_and_ranges_expand_as_written(
        items in prop::collection::vec(
            prop_oneof![
                (-50i32..50).prop_map(|v| (v.to_string(), vec![v])),
                (-20i32..20, 0i32..30, 1i32..7).prop_map(|(a, n, step)| {
                    let b = a + n;
                    (format!("{a}-{b}+{step}"), (a..=b).step_by(step as usize).collect())
                }),
                (0i32..20, 0i32..5).prop_map(|(a, n)| (format!("{a}-{}", a + n), (a..=a + n).collect())),
            ],
            1..6,
        ),
    ) {
        let text: Vec<&str> = items.iter().map(|(t, _)| t.as_str()).collect();
        let want: Vec<i32> = items.iter().flat_map(|(_, v)| v.clone()).collect();
        prop_assert_eq!(parse_list::<i32>("--n-gpu-layers", &text.join(",")).unwrap(), want);
    }

    #[test]
    fn gguf_check_random_bytes_never_panic(
        magic in prop::bool::ANY,
        version in 0u32..5,
        rest in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = Vec::new();
        if magic {
            bytes.extend_from_slice(b"GGUF");
            bytes.extend_from_slice(&version.to_le_bytes());
        }
        bytes.extend_from_slice(&rest);
        let _ = gguf::parse(Cursor::new(&bytes), bytes.len() as u64);
    }

    #[test]
    fn gguf_check_refuses_every_truncation_of_the_real_model(at in any::<prop::sample::Index>(), header in prop::bool::ANY) {
        let model = real_model();
        // Half the cuts land in the header and tensor table, where parsing is most delicate.
        let limit = if header { (4 << 20).min(model.len()) } else { model.len() };
        let cut = at.index(limit);
        let r = gguf::parse(Cursor::new(&model[..cut]), cut as u64);
        prop_assert!(r.is_err(), "a file cut at {} of {} bytes passed", cut, model.len());
    }

    #[test]
    fn gguf_check_damaged_headers_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let model = real_model();
        let mut head = model[..64 << 10].to_vec();
        for (i, b) in flips {
            let i = i.index(head.len());
            head[i] = b;
        }
        let _ = gguf::parse(Cursor::new(&head), model.len() as u64);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("results".to_string()),
            Just("runs".to_string()),
            "[a-z_]{0,8}".prop_map(String::from),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("schema_version".to_string()),
            Just("results".to_string()),
            Just("timestamp".to_string()),
            Just("scenario".to_string()),
            Just("config".to_string()),
            Just("prompts".to_string()),
            Just("runs".to_string()),
            Just("name".to_string()),
            Just("prompt".to_string()),
            Just("max_tokens".to_string()),
            "[a-z_]{1,8}".prop_map(String::from),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn prompt_set() -> impl Strategy<Value = Vec<PromptSpec>> {
    prop::collection::btree_map("[a-z]{1,6}", ("\\PC{0,30}", 1u32..5000), 1..5).prop_map(|m| {
        m.into_iter()
            .map(|(name, (prompt, max_tokens))| PromptSpec {
                name,
                prompt,
                max_tokens,
                description: None,
            })
            .collect()
    })
}

/// Every report format renders what the reader accepted, without a panic.
fn render_all(file: &inproc_bench::results::ResultsFile) {
    for f in [Format::Table, Format::Md, Format::Csv, Format::Json] {
        let _ = inproc_bench::report::render(file, f);
    }
}

fn real_results() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/smollm2_ngl_threads_sweep.json");
        std::fs::read_to_string(p).unwrap()
    })
}

fn real_model() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(common::model()).unwrap())
}

#[test]
fn the_real_model_passes_and_a_truncated_copy_is_named_with_the_fix() {
    let model = common::model();
    let whole = check_gguf_file(&model).unwrap();
    assert!(whole.tensors > 0 && whole.metadata > 0, "{whole:?}");
    let len = std::fs::metadata(&model).unwrap().len();
    assert!(
        whole.data_end <= len && whole.data_end + 64 >= len,
        "{whole:?} of {len}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &real_model()[..(len as usize) / 2]).unwrap();
    let e = check_gguf_file(&cut).unwrap_err().to_string();
    assert!(
        e.contains("cut.gguf is not a usable GGUF file: truncated: the tensor data ends at byte")
            && e.contains("fetch the file again"),
        "{e}"
    );
    std::fs::write(&cut, b"PK\x03\x04 a zip file").unwrap();
    let e = check_gguf_file(&cut).unwrap_err().to_string();
    assert!(e.contains("not a GGUF file (no GGUF magic)"), "{e}");
    // The reader under the check says the same, without the file's name.
    let zip: &[u8] = b"PK\x03\x04 a zip file";
    let e = gguf::parse(Cursor::new(zip), zip.len() as u64)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "not a GGUF file (no GGUF magic)");
    let e = check_gguf_file(&cut).unwrap_err().to_string();
    assert!(
        e.contains("not a GGUF file") && e.contains("cut.gguf"),
        "{e}"
    );
}

#[test]
fn sweep_items_that_once_panicked_or_ran_out_of_memory_are_plain_errors() {
    for (item, says) in [
        ("+-5", "invalid value '+-5'"),
        ("é-3", "invalid value 'é-3'"),
        ("0-100000000", "expands to 100000001 values, more than 4096"),
        (
            "0-9223372036854775806",
            "expands to 9223372036854775807 values",
        ),
        ("-9223372036854775808-9223372036854775807", "invalid value"),
    ] {
        let e = parse_list::<u32>("--threads", item)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--threads: ") && e.contains(says),
            "{item}: {e}"
        );
    }
}

#[test]
fn sse_splits_the_properties_found_give_the_same_events() {
    // An empty piece between the `\r` and the `\n` of one line end used to end the line twice.
    let body = b"data: x\r\ndata: y\r\n\r\n";
    let (whole, _) = parse_split(body, &[], sse::MAX_LINE);
    assert_eq!(whole.len(), 1);
    assert_eq!(parse_split(body, &[8, 8], sse::MAX_LINE).0, whole);
    // A byte order mark split over pieces used to stay in the first line.
    let body = b"\xEF\xBB\xBFdata: a\n\n";
    let (whole, p) = parse_split(body, &[], sse::MAX_LINE);
    let (split, q) = parse_split(body, &[1, 2], sse::MAX_LINE);
    assert_eq!((whole.len(), &whole), (1, &split));
    assert!(!p.has_partial() && !q.has_partial());
}
