//! Keeps the table of bad input and faults in docs/faults.md true: every test it names exists, every
//! message it quotes (in backticks) is asserted in that test, and every test of the fault files
//! has a row.

use std::collections::BTreeSet;
use std::path::Path;

const START: &str = "<!-- faults-table:start -->";
const END: &str = "<!-- faults-table:end -->";
/// Files whose every test must appear in the table.
const COMPLETE: &[&str] = &["faults", "http_client"];

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The source of `fn name(` in `text`, up to the next top-level item.
fn body<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("fn {name}("))?;
    let rest = &text[start..];
    let end = rest.find("\n}\n").map_or(rest.len(), |e| e + 3);
    Some(&rest[..end])
}

/// The parts of `cell` between backticks.
fn quoted(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

fn test_names(text: &str) -> Vec<String> {
    text.split("#[test]")
        .skip(1)
        .filter_map(|rest| {
            let f = rest.split("fn ").nth(1)?;
            Some(f.split('(').next()?.trim().to_string())
        })
        .collect()
}

#[test]
fn every_row_names_a_real_test_that_asserts_what_the_row_quotes() {
    let readme = read("docs/faults.md");
    let table = readme
        .split(START)
        .nth(1)
        .and_then(|r| r.split(END).next())
        .expect("docs/faults.md has the faults table between its markers");
    let mut named = BTreeSet::new();
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = line.split(" | ").collect();
        assert_eq!(cells.len(), 3, "a row has three columns: {line}");
        rows += 1;
        let tests: Vec<&str> = quoted(cells[2]);
        assert!(!tests.is_empty(), "no test named in: {line}");
        let sources: Vec<(String, String)> = tests
            .iter()
            .map(|t| {
                let (file, name) = t
                    .split_once("::")
                    .unwrap_or_else(|| panic!("'{t}' is not file::test"));
                named.insert((file.to_string(), name.to_string()));
                let text = read(&format!("tests/{file}.rs"));
                let src = body(&text, name)
                    .unwrap_or_else(|| panic!("tests/{file}.rs has no test {name}"));
                (t.to_string(), src.to_string())
            })
            .collect();
        for q in quoted(cells[1]) {
            assert!(
                sources.iter().any(|(_, src)| src.contains(q)),
                "the row says `{q}`, but {} never asserts it",
                tests.join(", ")
            );
        }
    }
    assert!(rows >= 20, "only {rows} rows");
    for file in COMPLETE {
        for name in test_names(&read(&format!("tests/{file}.rs"))) {
            assert!(
                named.contains(&(file.to_string(), name.clone())),
                "tests/{file}.rs::{name} has no row in docs/faults.md's faults table"
            );
        }
    }
}
