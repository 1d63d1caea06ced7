//! The tokenizer for machine text: log lines full of identifiers, numbers,
//! IP addresses, paths, UUIDs and status codes.
//!
//! A line is split at whitespace and punctuation that never sits inside a
//! value (`= , ; " ' ( ) [ ] { } < > | ! ? * & # $ ^ \` and such). Each
//! piece is a *group*; leading and trailing joiners (`. _ - / : @ + ~ %`)
//! are stripped from it. A group is cut at the joiners into *parts*, the
//! runs of letters and digits. Every part is a token, and so is every
//! group of two or more parts, so `10.0.0.1`, `user_id`,
//! `550e8400-e29b-41d4-a716-446655440000` and `api/v1/orders` are found
//! whole and by any of their parts. Tokens are lowercased.

/// Tokens longer than this many bytes are not indexed (a part that long is
/// a blob, not a word; its group may still be).
pub const MAX_TOKEN_LEN: usize = 128;

/// Characters that join parts into one group.
const fn is_joiner(c: char) -> bool {
    matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '+' | '~' | '%')
}

/// A token of a line, in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// A run of letters and digits (not lowercased yet).
    Part(&'a str),
    /// A group of two or more parts joined by joiners (not lowercased yet).
    Group(&'a str),
}

/// What a character is to the tokenizer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A letter or digit: part of a part.
    Word,
    /// Joins parts into a group.
    Joiner,
    /// Ends a group.
    Break,
}

/// Classes of the bytes: an ASCII character's class; other bytes (parts
/// of other characters) `Break`, for text known to be ASCII, where no such
/// byte occurs.
const BYTE_CLASS: [Class; 256] = {
    let mut t = [Class::Break; 256];
    let mut b = 0;
    while b < 128 {
        if (b as u8).is_ascii_alphanumeric() {
            t[b] = Class::Word;
        } else if is_joiner(b as u8 as char) {
            t[b] = Class::Joiner;
        }
        b += 1;
    }
    t
};

/// The class of the character at byte `i` of `text` and its length. Log
/// text is nearly all ASCII: a table lookup, with the Unicode test only
/// for other characters (none of which is a joiner).
#[inline]
fn class_at(text: &str, i: usize) -> (Class, usize) {
    let b = text.as_bytes()[i];
    if b.is_ascii() {
        return (BYTE_CLASS[usize::from(b)], 1);
    }
    let c = text[i..].chars().next().unwrap_or(' ');
    let class = if c.is_alphanumeric() {
        Class::Word
    } else {
        Class::Break
    };
    (class, c.len_utf8())
}

/// Calls `f` with each token of `text`: for every group first its parts,
/// then the group itself when it has two or more parts.
pub fn for_each_token<'a>(text: &'a str, mut f: impl FnMut(Token<'a>)) {
    scan(text, class_at, |group, at| {
        let s = &text[at];
        f(if group {
            Token::Group(s)
        } else {
            Token::Part(s)
        });
    });
}

/// The scanner behind [`for_each_token`]: calls `f(is_group, range)` for
/// each token, classing characters with `class` (the class of the
/// character at a byte offset, and its length).
#[inline(always)]
fn scan(
    text: &str,
    class: impl Fn(&str, usize) -> (Class, usize),
    mut f: impl FnMut(bool, std::ops::Range<usize>),
) {
    let mut i = 0;
    while i < text.len() {
        // Skip to the start of a group: a letter or digit.
        let (c, w) = class(text, i);
        if c != Class::Word {
            i += w;
            continue;
        }
        let start = i;
        let (mut part_start, mut word_end, mut parts) = (i, i, 0);
        while i < text.len() {
            let (c, w) = class(text, i);
            match c {
                Class::Word => word_end = i + w,
                Class::Joiner => {
                    if part_start < i {
                        parts += 1;
                        if i - part_start <= MAX_TOKEN_LEN {
                            f(false, part_start..i);
                        }
                    }
                    part_start = i + w;
                }
                Class::Break => break,
            }
            i += w;
        }
        if part_start < word_end {
            parts += 1;
            if word_end - part_start <= MAX_TOKEN_LEN {
                f(false, part_start..word_end);
            }
        }
        if parts > 1 && word_end - start <= MAX_TOKEN_LEN {
            f(true, start..word_end);
        }
    }
}

/// Lowercases a token into `buf` (reused between calls) and returns it.
pub fn normalize<'b>(token: &str, buf: &'b mut String) -> &'b str {
    buf.clear();
    if token.is_ascii() {
        buf.push_str(token);
        buf.make_ascii_lowercase();
    } else {
        buf.extend(token.chars().flat_map(char::to_lowercase));
    }
    buf.as_str()
}

/// A list of terms in one buffer: a record's terms cost two allocations,
/// not one a term. A body's tokens are ranges of one lowercased copy of
/// it, so a token's text is never copied on its own (parts and groups
/// together hold about twice the body's bytes).
#[derive(Debug, Default, Clone)]
pub struct Terms {
    text: String,
    /// (start, end) of each term in `text`.
    spans: Vec<(u32, u32)>,
}

impl Terms {
    /// Room for terms of `bytes` bytes in all, `n` of them.
    pub fn with_capacity(bytes: usize, n: usize) -> Self {
        Terms {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(n),
        }
    }

    /// Appends a term.
    pub fn push(&mut self, term: &str) {
        self.push_joined(&[term]);
    }

    /// Appends one term made of `pieces` end to end.
    pub fn push_joined(&mut self, pieces: &[&str]) {
        let start = self.text.len() as u32;
        for p in pieces {
            self.text.push_str(p);
        }
        self.spans.push((start, self.text.len() as u32));
    }

    /// Appends a token lowercased (as [`normalize`] does, without the
    /// copy through a buffer).
    fn push_lowercase(&mut self, token: &str) {
        let start = self.text.len() as u32;
        self.text.extend(token.chars().flat_map(char::to_lowercase));
        self.spans.push((start, self.text.len() as u32));
    }

    /// Removes every term, keeping the room.
    pub fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }

    /// Appends the terms of `other`.
    pub fn extend(&mut self, other: &Terms) {
        let base = self.text.len() as u32;
        self.text.push_str(&other.text);
        (self.spans).extend(other.spans.iter().map(|&(s, e)| (base + s, base + e)));
    }

    /// Bytes of the terms' text.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Terms pushed.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when no term was pushed.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The terms, in the order pushed (a term may come more than once).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (self.spans.iter()).map(|&(s, e)| &self.text[s as usize..e as usize])
    }
}

/// Appends the normalised tokens of `text` to `out`, for indexing. ASCII
/// text (nearly every log line) is lowercased once, whole, and its tokens
/// are ranges of that copy, found with a table lookup a byte.
pub fn push_index_tokens(text: &str, out: &mut Terms) {
    if !text.is_ascii() {
        return for_each_token(text, |t| {
            let (Token::Part(s) | Token::Group(s)) = t;
            out.push_lowercase(s);
        });
    }
    let base = out.text.len();
    out.text.push_str(text);
    out.text[base..].make_ascii_lowercase();
    let spans = &mut out.spans;
    scan(
        text,
        |t, i| (BYTE_CLASS[usize::from(t.as_bytes()[i])], 1),
        |_, at| spans.push(((base + at.start) as u32, (base + at.end) as u32)),
    );
}

/// The distinct normalised tokens of `text`, for indexing.
pub fn index_tokens(text: &str) -> Vec<String> {
    let mut terms = Terms::default();
    push_index_tokens(text, &mut terms);
    let mut out: Vec<String> = terms.iter().map(String::from).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The normalised parts of `text` in order (for phrase matching).
pub fn parts(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = String::new();
    for_each_token(text, |t| {
        if let Token::Part(s) = t {
            out.push(normalize(s, &mut buf).to_string());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_text() {
        let toks = index_tokens(
            "GET /api/v1/orders?id=42 from 10.0.0.1:8080 user_id=Bob \
             req=550e8400-e29b-41d4-a716-446655440000 status=503 took 1.5ms.",
        );
        for want in [
            "get",
            "api/v1/orders",
            "api",
            "v1",
            "orders",
            "id",
            "42",
            "10.0.0.1:8080",
            "10",
            "8080",
            "user_id",
            "user",
            "bob",
            "550e8400-e29b-41d4-a716-446655440000",
            "446655440000",
            "503",
            "1.5ms",
            "5ms",
        ] {
            assert!(toks.iter().any(|t| t == want), "missing {want}: {toks:?}");
        }
        assert!(!toks.iter().any(|t| t.ends_with('.') || t.starts_with('/')));
    }

    #[test]
    fn parts_in_order_and_unicode() {
        assert_eq!(
            parts("Connection REFUSED: peer=db-1"),
            ["connection", "refused", "peer", "db", "1"]
        );
        assert_eq!(index_tokens("Ünïcode ÄRGER"), ["ärger", "ünïcode"]);
        assert!(index_tokens("  ... !!! ").is_empty());
    }

    /// The tokenizer as the module doc states it, one `str` method at a
    /// time: the byte-class scanner must give the same tokens.
    fn stated_tokens(text: &str) -> Vec<Token<'_>> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(char::is_alphanumeric) {
            rest = &rest[start..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || is_joiner(c)))
                .unwrap_or(rest.len());
            let group = rest[..end].trim_end_matches(is_joiner);
            rest = &rest[end..];
            let parts: Vec<&str> = group.split(is_joiner).filter(|p| !p.is_empty()).collect();
            out.extend(
                parts
                    .iter()
                    .filter(|p| p.len() <= MAX_TOKEN_LEN)
                    .map(|p| Token::Part(p)),
            );
            if parts.len() > 1 && group.len() <= MAX_TOKEN_LEN {
                out.push(Token::Group(group));
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn scanner_matches_the_statement(text in "([a-zA-Z0-9ÄÜé٣ _.:/=\\-]{0,12}|[ -~]{0,40}|\\PC{0,20}|[a.]{120,140}){0,6}") {
            let mut got = Vec::new();
            for_each_token(&text, |t| got.push(t));
            proptest::prop_assert_eq!(got, stated_tokens(&text));
            let mut terms = Terms::default();
            push_index_tokens(&text, &mut terms);
            let mut buf = String::new();
            let want: Vec<String> = stated_tokens(&text)
                .into_iter()
                .map(|t| {
                    let (Token::Part(s) | Token::Group(s)) = t;
                    normalize(s, &mut buf).to_string()
                })
                .collect();
            proptest::prop_assert_eq!(terms.iter().collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn long_tokens_skipped() {
        let blob = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(index_tokens(&format!("{blob} ok")), ["ok"]);
    }
}
