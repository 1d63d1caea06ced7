//! PromQL tokens. The lexer works on bytes and records each token's byte
//! position, so errors can point at `line:column`.

use crate::error::ParseError;

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Number(f64),
    /// A duration in milliseconds (`5m`, `1h30m`, `10s53ms`).
    Duration(i64),
    Str(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    Assign,     // =
    Eql,        // ==
    Neq,        // !=
    ReMatch,    // =~
    ReNotMatch, // !~
    Lss,
    Lte,
    Gtr,
    Gte,
    /// `</`: keeps a histogram's observations below a value.
    TrimUpper,
    /// `>/`: keeps a histogram's observations above a value.
    TrimLower,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    /// `|`, `|=` and `|~`: lexed only inside `logs(...)`/`spans(...)`.
    Pipe,
    PipeEq,
    PipeRe,
    Eof,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

/// Operators of two characters, tried before the one-character ones.
const TWO_CHAR: [(&[u8; 2], Tok); 8] = [
    (b"==", Tok::Eql),
    (b"=~", Tok::ReMatch),
    (b"!=", Tok::Neq),
    (b"!~", Tok::ReNotMatch),
    (b"<=", Tok::Lte),
    (b">=", Tok::Gte),
    (b"</", Tok::TrimUpper),
    (b">/", Tok::TrimLower),
];

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Parenthesis depth, and the depths at which a `logs(`/`spans(` opened:
    // inside one, `|` operators and dotted attribute names are tokens;
    // elsewhere the lexer reads PromQL exactly as before.
    let mut depth = 0usize;
    let mut selectors: Vec<usize> = Vec::new();
    while i < b.len() {
        let c = b[i];
        let start = i;
        let in_selector = !selectors.is_empty();
        if in_selector && c == b'|' {
            let (tok, len) = match b.get(i + 1) {
                Some(b'=') => (Tok::PipeEq, 2),
                Some(b'~') => (Tok::PipeRe, 2),
                _ => (Tok::Pipe, 1),
            };
            out.push(Token { tok, pos: start });
            i += len;
            continue;
        }
        if c == b'(' {
            depth += 1;
            if matches!(out.last(), Some(Token { tok: Tok::Ident(w), .. }) if w == "logs" || w == "spans")
            {
                selectors.push(depth);
            }
        } else if c == b')' {
            if selectors.last() == Some(&depth) {
                selectors.pop();
            }
            depth = depth.saturating_sub(1);
        }
        if let Some((_, tok)) = TWO_CHAR.iter().find(|(op, _)| b[i..].starts_with(&op[..])) {
            out.push(Token {
                tok: tok.clone(),
                pos: start,
            });
            i += 2;
            continue;
        }
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'{' => Tok::LBrace,
            b'}' => Tok::RBrace,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b',' => Tok::Comma,
            b':' => Tok::Colon,
            b'@' => Tok::At,
            b'+' => Tok::Add,
            b'-' => Tok::Sub,
            b'*' => Tok::Mul,
            b'/' => Tok::Div,
            b'%' => Tok::Mod,
            b'^' => Tok::Pow,
            b'=' => Tok::Assign,
            b'<' => Tok::Lss,
            b'>' => Tok::Gtr,
            b'"' | b'\'' | b'`' => {
                let (s, end) = string(src, i)?;
                i = end;
                out.push(Token {
                    tok: Tok::Str(s),
                    pos: start,
                });
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let (tok, end) = number_or_duration(src, i)?;
                i = end;
                out.push(Token { tok, pos: start });
                continue;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let mut j = i;
                while j < b.len()
                    && (b[j] == b'_'
                        || b[j] == b':'
                        || b[j].is_ascii_alphanumeric()
                        || (in_selector
                            && b[j] == b'.'
                            && b.get(j + 1)
                                .is_some_and(|c| *c == b'_' || c.is_ascii_alphabetic())))
                {
                    j += 1;
                }
                let word = &src[i..j];
                i = j;
                let tok = match word.to_ascii_lowercase().as_str() {
                    "inf" => Tok::Number(f64::INFINITY),
                    "nan" => Tok::Number(f64::NAN),
                    _ => Tok::Ident(word.to_string()),
                };
                out.push(Token { tok, pos: start });
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::at(
                    src,
                    i,
                    format!("unexpected character: '{ch}'"),
                ));
            }
        };
        i += 1;
        out.push(Token { tok, pos: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

fn string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let b = src.as_bytes();
    let q = b[start];
    let mut out = String::new();
    let mut i = start + 1;
    let mut chars = src[i..].char_indices();
    while let Some((off, c)) = chars.next() {
        let at = i + off;
        if c as u32 == u32::from(q) {
            return Ok((out, at + 1));
        }
        if q == b'`' || c != '\\' {
            if c == '\n' && q != b'`' {
                break;
            }
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n)
                    .filter_map(|_| chars.next().map(|(_, h)| h))
                    .collect();
                let v = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                match v {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(ParseError::at(
                            src,
                            at,
                            format!("invalid escape sequence \\{e}{hex}"),
                        ));
                    }
                }
            }
            d if d.is_digit(8) => {
                let mut oct = d.to_string();
                for _ in 0..2 {
                    if let Some((_, o)) = chars.next() {
                        oct.push(o);
                    }
                }
                let v = u32::from_str_radix(&oct, 8).ok().and_then(char::from_u32);
                match v {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(ParseError::at(
                            src,
                            at,
                            format!("invalid escape sequence \\{oct}"),
                        ));
                    }
                }
            }
            other => {
                return Err(ParseError::at(
                    src,
                    at,
                    format!("unknown escape sequence '{other}'"),
                ));
            }
        }
    }
    i = src.len();
    Err(ParseError::at(
        src,
        start.min(i),
        "unterminated quoted string".to_string(),
    ))
}

const UNITS: [(&str, i64); 7] = [
    ("ms", 1),
    ("s", 1000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
    ("y", 31_536_000_000),
];

/// Parses a duration like `1h30m` or `10s53ms` into ms.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    let (mut i, mut total, mut last_unit) = (0, 0i64, None::<usize>);
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let j = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if j == i {
            return None;
        }
        let n: i64 = s[i..j].parse().ok()?;
        let rest = &s[j..];
        let (k, (u, mult)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
            .max_by_key(|(_, (u, _))| u.len())?;
        // Units must go from largest to smallest, each at most once.
        if last_unit.is_some_and(|l| k >= l) {
            return None;
        }
        last_unit = Some(k);
        total = total.checked_add(n.checked_mul(*mult)?)?;
        i = j + u.len();
    }
    Some(total)
}

fn number_or_duration(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let b = src.as_bytes();
    // Hex integers.
    if b[start] == b'0' && matches!(b.get(start + 1), Some(b'x' | b'X')) {
        let mut j = start + 2;
        while j < b.len() && b[j].is_ascii_hexdigit() {
            j += 1;
        }
        let v = i64::from_str_radix(&src[start + 2..j], 16).map_err(|_| {
            ParseError::at(
                src,
                start,
                format!("bad number or duration syntax: \"{}\"", &src[start..j]),
            )
        })?;
        return Ok((Tok::Number(v as f64), j));
    }
    let digits = |mut j: usize| {
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
            j += 1;
        }
        j
    };
    let mut j = digits(start);
    let exp_follows = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    if matches!(b.get(j), Some(b'e' | b'E'))
        && (exp_follows(j + 1) || (matches!(b.get(j + 1), Some(b'+' | b'-')) && exp_follows(j + 2)))
    {
        j = digits(j + 2);
    }
    if !b.get(j).is_some_and(|c| c.is_ascii_alphabetic()) {
        let text = &src[start..j];
        if let Ok(v) = text.parse::<f64>() {
            return Ok((Tok::Number(v), j));
        }
    }
    // A duration: digits and unit letters (`1h30m`).
    let mut j = start;
    while j < b.len() && b[j].is_ascii_alphanumeric() {
        j += 1;
    }
    let text = &src[start..j.max(start + 1)];
    if let Some(ms) = parse_duration(text) {
        return Ok((Tok::Duration(ms), j));
    }
    Err(ParseError::at(
        src,
        start,
        format!("bad number or duration syntax: \"{text}\""),
    ))
}
