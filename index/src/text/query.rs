//! Full-text queries over log bodies, with one meaning whether they run on
//! the head's in-memory postings or on a block's Tantivy index.
//!
//! Syntax (whitespace between clauses means AND):
//!
//! ```text
//! query  = or
//! or     = and { "OR" and }
//! and    = unary { unary }
//! unary  = [ "-" ] atom                 -- "-" negates
//! atom   = word                         -- a token, e.g. timeout, 10.0.0.1
//!        | word "*"                     -- a token starting with word
//!        | '"' text '"'                 -- parts of text, consecutive
//!        | "/" regex "/"                -- a token the regex matches fully
//!        | "(" or ")"
//! ```
//!
//! A word is tokenized like the log line. When it is one group (`user_id`,
//! `10.0.0.1`) or one part (`timeout`) it matches lines holding that token;
//! when it has several groups (`status=503`) it means the phrase of its
//! parts. Matching ignores case.

use regex::Regex;
use roaring::RoaringBitmap;

use super::tokenize::{Terms, Token, for_each_token, normalize, parts, push_index_tokens};
use crate::error::{Error, Result};

/// Terms starting with this character are not body tokens but fields of
/// the row (`\u{1}service=checkout`): the tokenizer never produces it, and
/// regexes over tokens skip such terms.
pub const FIELD_MARK: char = '\u{1}';

/// A parsed text query.
#[derive(Debug, Clone)]
pub enum TextQuery {
    /// Lines with this normalised token.
    Term(String),
    /// Lines whose parts contain these normalised parts consecutively.
    Phrase(Vec<String>),
    /// Lines with a token starting with this normalised prefix.
    Prefix(String),
    /// Lines with a token the regex matches fully (case-insensitively).
    Regex(Regex),
    /// All of these.
    And(Vec<TextQuery>),
    /// Any of these.
    Or(Vec<TextQuery>),
    /// Lines not matching this.
    Not(Box<TextQuery>),
}

/// Where a query finds the rows holding a token: the head's postings or a
/// block's Tantivy index.
pub trait TermSource {
    /// Every row.
    fn all_rows(&self) -> RoaringBitmap;
    /// Rows holding exactly this normalised token.
    fn term_rows(&self, token: &str) -> Result<RoaringBitmap>;
    /// Rows holding any term that starts with `prefix` and for which
    /// `pred` (given the whole term) is true.
    fn rows_where(&self, prefix: &str, pred: &dyn Fn(&str) -> bool) -> Result<RoaringBitmap>;
    /// Whether the rows answered are exactly those holding the term (else
    /// a superset, which the caller checks row by row).
    fn exact(&self) -> bool {
        true
    }
}

/// The text every token a query regex matches starts with, so that only
/// the terms under it are tried (a regex over request ids would otherwise
/// run over every term of the index): the leading ASCII letters and digits
/// of the pattern, lowercased as tokens are, less the last one when a
/// quantifier that allows zero follows it. Empty for a pattern with an
/// alternation, whose branches may start otherwise.
fn literal_prefix(r: &Regex) -> String {
    let body = r
        .as_str()
        .strip_prefix("^(?i:")
        .and_then(|b| b.strip_suffix(")$"))
        .unwrap_or("");
    if body.contains('|') {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = body.chars();
    for c in chars.by_ref() {
        // `k` and `s` also match the Kelvin sign and the long s under
        // Unicode case folding: a prefix stops before them.
        if c.is_ascii_alphanumeric() && !matches!(c, 'k' | 'K' | 's' | 'S') {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        if matches!(c, '*' | '?' | '{') {
            out.pop();
        }
        break;
    }
    out
}

impl TextQuery {
    /// Parses the syntax in the module documentation.
    pub fn parse(src: &str) -> Result<TextQuery> {
        let mut p = Parser {
            src,
            pos: 0,
            depth: 0,
        };
        let q = p.or()?;
        p.skip_ws();
        if p.pos < src.len() {
            return Err(p.error("unexpected `)`"));
        }
        Ok(q)
    }

    /// Rows that may match, and whether they all do. Phrases are answered
    /// by the rows holding all their parts; the caller then checks those
    /// rows with [`TextQuery::matches`].
    pub fn candidates(&self, src: &dyn TermSource) -> Result<(RoaringBitmap, bool)> {
        Ok(match self {
            TextQuery::Term(t) => (src.term_rows(t)?, src.exact()),
            TextQuery::Prefix(p) => (src.rows_where(p, &|_| true)?, src.exact()),
            TextQuery::Regex(r) => (
                src.rows_where(&literal_prefix(r), &|t| {
                    !t.starts_with(FIELD_MARK) && r.is_match(t)
                })?,
                src.exact(),
            ),
            TextQuery::Phrase(ps) => {
                let mut acc: Option<RoaringBitmap> = None;
                for p in ps {
                    let rows = src.term_rows(p)?;
                    acc = Some(match acc {
                        Some(a) => a & rows,
                        None => rows,
                    });
                }
                (
                    acc.unwrap_or_else(|| src.all_rows()),
                    ps.len() <= 1 && src.exact(),
                )
            }
            TextQuery::And(qs) => {
                let mut acc: Option<RoaringBitmap> = None;
                let mut exact = true;
                for q in qs {
                    let (rows, e) = q.candidates(src)?;
                    exact &= e;
                    let next = match acc {
                        Some(a) => a & rows,
                        None => rows,
                    };
                    if next.is_empty() {
                        return Ok((next, true));
                    }
                    acc = Some(next);
                }
                (acc.unwrap_or_else(|| src.all_rows()), exact)
            }
            TextQuery::Or(qs) => {
                let mut acc = RoaringBitmap::new();
                let mut exact = true;
                for q in qs {
                    let (rows, e) = q.candidates(src)?;
                    exact &= e;
                    acc |= rows;
                }
                (acc, exact)
            }
            TextQuery::Not(q) => match q.candidates(src)? {
                (rows, true) => (src.all_rows() - rows, true),
                (_, false) => (src.all_rows(), false),
            },
        })
    }

    /// Whether one line matches (the exact meaning every index agrees with).
    pub fn matches(&self, line: &str) -> bool {
        // Most lines a paged index hands over only share a page with a
        // match: a substring search turns them away before tokenizing.
        let lower = if line.is_ascii() {
            line.to_ascii_lowercase()
        } else {
            line.chars().flat_map(char::to_lowercase).collect()
        };
        if !self.may_match(&lower) {
            return false;
        }
        // Readers check many candidate lines: tokens go into one buffer,
        // and the parts only when a phrase needs them.
        let mut tokens = Terms::default();
        push_index_tokens(line, &mut tokens);
        let line_parts = if self.has_phrase() {
            parts(line)
        } else {
            Vec::new()
        };
        self.eval_line(&tokens, &line_parts)
    }

    /// A test every matching line passes, given the line lowercased
    /// character by character as tokens are: a token is a piece of it, so
    /// each term, prefix, phrase part and regex literal prefix the query
    /// needs is a substring.
    fn may_match(&self, lower: &str) -> bool {
        match self {
            TextQuery::Term(t) | TextQuery::Prefix(t) => lower.contains(t.as_str()),
            TextQuery::Phrase(ps) => ps.iter().all(|p| lower.contains(p.as_str())),
            TextQuery::Regex(r) => lower.contains(literal_prefix(r).as_str()),
            TextQuery::And(qs) => qs.iter().all(|q| q.may_match(lower)),
            TextQuery::Or(qs) => qs.iter().any(|q| q.may_match(lower)),
            TextQuery::Not(_) => true,
        }
    }

    fn has_phrase(&self) -> bool {
        match self {
            TextQuery::Phrase(_) => true,
            TextQuery::And(qs) | TextQuery::Or(qs) => qs.iter().any(TextQuery::has_phrase),
            TextQuery::Not(q) => q.has_phrase(),
            TextQuery::Term(_) | TextQuery::Prefix(_) | TextQuery::Regex(_) => false,
        }
    }

    fn eval_line(&self, tokens: &Terms, line_parts: &[String]) -> bool {
        match self {
            TextQuery::Term(t) => tokens.iter().any(|x| x == t),
            TextQuery::Prefix(p) => tokens.iter().any(|x| x.starts_with(p.as_str())),
            TextQuery::Regex(r) => tokens.iter().any(|x| r.is_match(x)),
            TextQuery::Phrase(ps) => {
                ps.is_empty() || line_parts.windows(ps.len()).any(|w| w == ps.as_slice())
            }
            TextQuery::And(qs) => qs.iter().all(|q| q.eval_line(tokens, line_parts)),
            TextQuery::Or(qs) => qs.iter().any(|q| q.eval_line(tokens, line_parts)),
            TextQuery::Not(q) => !q.eval_line(tokens, line_parts),
        }
    }
}

/// The query for a bare word: its token if it is one group, else the
/// phrase of its parts.
fn word_query(word: &str) -> TextQuery {
    let mut groups = 0;
    let mut last = None;
    let mut buf = String::new();
    for_each_token(word, |t| match t {
        Token::Part(p) => {
            groups += 1;
            last = Some(normalize(p, &mut buf).to_string());
        }
        Token::Group(g) => {
            // Its parts were counted one by one: count the group once.
            groups -= parts(g).len() - 1;
            last = Some(normalize(g, &mut buf).to_string());
        }
    });
    match (groups, last) {
        (1, Some(t)) => TextQuery::Term(t),
        _ => TextQuery::Phrase(parts(word)),
    }
}

/// Deepest nesting of `(groups)` accepted: parsing, matching and
/// dropping a query all recurse once per level, and no real search nests
/// anywhere near this deep.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// `(groups)` open at this point.
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::TextQuery {
            query: self.src.to_string(),
            pos: self.pos,
            reason: what.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn at_or(&self) -> bool {
        let rest = &self.src[self.pos..];
        rest.starts_with("OR") && rest[2..].chars().next().is_none_or(char::is_whitespace)
    }

    fn or(&mut self) -> Result<TextQuery> {
        let mut alts = vec![self.and()?];
        loop {
            self.skip_ws();
            if !self.at_or() {
                break;
            }
            self.pos += 2;
            alts.push(self.and()?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            TextQuery::Or(alts)
        })
    }

    fn and(&mut self) -> Result<TextQuery> {
        let mut all = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(')') => break,
                _ if self.at_or() => break,
                _ => all.push(self.unary()?),
            }
        }
        match all.len() {
            0 => Err(self.error("expected a word, \"phrase\", /regex/ or (group)")),
            1 => Ok(all.remove(0)),
            _ => Ok(TextQuery::And(all)),
        }
    }

    fn unary(&mut self) -> Result<TextQuery> {
        if self.peek() == Some('-') {
            self.pos += 1;
            return Ok(TextQuery::Not(Box::new(self.atom()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<TextQuery> {
        match self.peek() {
            Some('(') => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.error(&format!(
                        "groups nested too deeply (more than {MAX_DEPTH} levels)"
                    )));
                }
                self.pos += 1;
                self.depth += 1;
                let q = self.or()?;
                self.depth -= 1;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err(self.error("missing `)`"));
                }
                self.pos += 1;
                Ok(q)
            }
            Some('"') => {
                let body = self.delimited('"')?;
                Ok(TextQuery::Phrase(parts(&body)))
            }
            Some('/') => {
                let start = self.pos;
                let body = self.delimited('/')?;
                Regex::new(&format!("^(?i:{body})$"))
                    .map(TextQuery::Regex)
                    .map_err(|e| {
                        self.pos = start;
                        self.error(&format!("invalid regex: {e}"))
                    })
            }
            _ => {
                let rest = &self.src[self.pos..];
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '(' || c == ')')
                    .unwrap_or(rest.len());
                let word = &rest[..end];
                self.pos += end;
                if let Some(prefix) = word.strip_suffix('*') {
                    let mut buf = String::new();
                    let p = normalize(prefix, &mut buf).to_string();
                    if p.is_empty() {
                        return Err(self.error("a prefix needs at least one character"));
                    }
                    return Ok(TextQuery::Prefix(p));
                }
                Ok(word_query(word))
            }
        }
    }

    /// Text up to the closing `delim` (a backslash escapes it).
    fn delimited(&mut self, delim: char) -> Result<String> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.src[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                if let Some((_, n)) = chars.next() {
                    if n != delim {
                        out.push('\\');
                    }
                    out.push(n);
                }
                continue;
            }
            if c == delim {
                self.pos += i + 1;
                return Ok(out);
            }
            out.push(c);
        }
        self.pos = open;
        Err(self.error(&format!("unclosed `{delim}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prefix_of(q: &str) -> String {
        match TextQuery::parse(q).unwrap() {
            TextQuery::Regex(r) => literal_prefix(&r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regexes_narrow_the_terms_they_try_to_their_literal_start() {
        for (q, want) in [
            ("/00a1[0-9a-f]{12}/", "00a1"),
            ("/ABC12/", "abc12"),
            ("/abc*/", "ab"),
            ("/abc?d/", "ab"),
            ("/ab+c/", "ab"),
            ("/ab{0,2}/", "a"),
            ("/a|b/", ""),
            ("/(ab)c/", ""),
            ("/\\d+/", ""),
            ("/risk/", "ri"),
            ("/u-42/", "u"),
        ] {
            assert_eq!(prefix_of(q), want, "{q}");
        }
    }

    proptest! {
        /// Every token a query regex matches starts with its literal
        /// prefix, so narrowing the term scan loses no match.
        #[test]
        fn the_literal_prefix_never_loses_a_match(
            pattern in "[a-d0-2]{0,3}[*?+]?[a-d0-2.]{0,2}",
            token in "[a-d0-2]{0,6}",
        ) {
            let Ok(q) = TextQuery::parse(&format!("/{pattern}/")) else { return Ok(()) };
            let TextQuery::Regex(r) = q else { return Ok(()) };
            if r.is_match(&token) {
                prop_assert!(token.starts_with(&literal_prefix(&r)), "{} {}", pattern, token);
            }
        }

        /// The substring test before tokenizing never turns away a line
        /// that matches: lines with capitals, joiners and characters whose
        /// lowercase is longer (`İ`) or ASCII (the Kelvin sign).
        #[test]
        fn the_substring_test_never_loses_a_match(
            line in "[abcAB İ\u{212A}k.:=_-]{0,24}",
            query in "[abkK İ\u{212A}\\-]{1,6}[*]?|/[abk]{1,3}[.+*]{0,2}/|\"[abk]{1,2} [abk]{1,2}\"",
        ) {
            let Ok(q) = TextQuery::parse(&query) else { return Ok(()) };
            let mut tokens = Terms::default();
            push_index_tokens(&line, &mut tokens);
            let whole = q.eval_line(&tokens, &parts(&line));
            prop_assert_eq!(q.matches(&line), whole, "{:?} {:?}", query, line);
        }
    }

    fn m(q: &str, line: &str) -> bool {
        TextQuery::parse(q).unwrap().matches(line)
    }

    #[test]
    fn semantics() {
        let line = "ERROR payment: connection refused to db-1 at 10.0.0.7:5432 status=503";
        assert!(m("error", line));
        assert!(m("ERROR refused", line));
        assert!(m("\"connection refused\"", line));
        assert!(!m("\"refused connection\"", line));
        assert!(m("10.0.0.7:5432", line));
        assert!(m("10.0.0.7:5432 5432", line));
        assert!(!m("10.0.0.8", line));
        assert!(m("status=503", line));
        assert!(m("conn*", line));
        assert!(m("/5\\d\\d/", line));
        assert!(!m("/5\\d/", line));
        assert!(m("timeout OR refused", line));
        assert!(!m("error -refused", line));
        assert!(m("(timeout OR refused) -warn", line));
        assert!(m("DB-1", line));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // Issue 19: 5,000 nested parentheses aborted the server.
        let deep = format!("{}a{}", "(".repeat(5000), ")".repeat(5000));
        let err = TextQuery::parse(&deep).unwrap_err().to_string();
        assert!(err.contains("nested too deeply"), "{err}");
        let ok = format!("{}a{}", "(-".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(TextQuery::parse(&ok).is_ok());
    }

    #[test]
    fn parse_errors_have_positions() {
        for (q, pos) in [("\"open", 0), ("a (b", 4), ("/[/", 0), ("", 0), ("a )", 2)] {
            match TextQuery::parse(q) {
                Err(Error::TextQuery { pos: p, .. }) => assert_eq!(p, pos, "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
    }
}
