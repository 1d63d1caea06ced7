//! The incident cookbook of docs/query-language.md, as data: its numbered
//! queries and the incident they are written against. The cookbook test
//! and `sextant bench cookbook` both read it from here, so the documented
//! queries are the ones checked and timed.

use super::sim::{Fault, FaultKind};

/// docs/query-language.md, compiled in.
pub const DOC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/query-language.md"
));

/// One cookbook query.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its number (1, 2, ...).
    pub number: usize,
    /// Its heading, number included.
    pub title: String,
    /// The query text.
    pub query: String,
}

/// The ```` ```sextant ```` blocks after the "Cookbook" heading of `doc`,
/// each under a `### N. Title` heading.
pub fn entries(doc: &str) -> Vec<Entry> {
    let Some(start) = doc.find("\n## Cookbook") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut title: Option<String> = None;
    let mut lines = doc[start..].lines();
    while let Some(l) = lines.next() {
        if let Some(t) = l.strip_prefix("### ") {
            title = Some(t.to_string());
        } else if l.trim() == "```sextant" {
            let query: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            let title = title.take().unwrap_or_default();
            let number = title
                .split('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            out.push(Entry {
                number,
                title,
                query: query.join("\n"),
            });
        }
    }
    out
}

/// The cookbook's incident: from 20 minutes before `now_ms`, the ledger
/// database is slow and the compliance service fails half its calls.
pub fn incident(now_ms: i64) -> Vec<Fault> {
    let (start_ms, end_ms) = (now_ms - 20 * 60_000, now_ms + 40 * 60_000);
    vec![
        Fault {
            kind: FaultKind::SlowDatabase,
            service: "ledger-db".into(),
            start_ms,
            end_ms,
        },
        Fault {
            kind: FaultKind::FailingDependency,
            service: "compliance".into(),
            start_ms,
            end_ms,
        },
    ]
}

/// The one-line examples of `doc`: every line of its ```` ```sextant-example ````
/// blocks (a trailing `# comment` removed), and every code span in the
/// last column of a table whose last header is "example" (up to a `:`).
pub fn examples(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = doc.lines().peekable();
    let mut example_table = false;
    while let Some(l) = lines.next() {
        if l.trim() == "```sextant-example" {
            for e in lines.by_ref().take_while(|l| l.trim() != "```") {
                let e = e.split("  #").next().unwrap_or("").trim();
                if !e.is_empty() {
                    out.push(e.to_string());
                }
            }
        } else if l.starts_with('|') {
            if l.trim_end().ends_with("| example |") {
                example_table = true;
            } else if example_table && !l.starts_with("|---") {
                let cell = l.trim_end().trim_end_matches('|');
                let last = cell.rsplit(" | ").next().unwrap_or("");
                if let Some(code) = last.split('`').nth(1) {
                    out.push(code.replace("\\|", "|"));
                }
            }
        } else {
            example_table = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_documented_example_parses() {
        let ex = super::examples(super::DOC);
        assert!(ex.len() >= 30, "{} examples", ex.len());
        for e in ex {
            sextant_query::parse(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
        }
    }

    #[test]
    fn the_documented_cookbook_is_numbered_and_parses() {
        let e = super::entries(super::DOC);
        assert!(e.len() >= 10, "{}", e.len());
        for (i, x) in e.iter().enumerate() {
            assert_eq!(x.number, i + 1, "{}", x.title);
            sextant_query::parse(&x.query).unwrap_or_else(|err| panic!("{}: {err}", x.title));
        }
    }
}
