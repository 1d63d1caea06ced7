//! Log templates: a Drain-class miner. Warn and error lines of a service
//! are reduced to templates ("connection pool exhausted (max=<*>) waiting
//! <*>ms") so that thousands of lines read as a handful of messages, and
//! a message new or surging against the baseline stands out.
//!
//! A line is first masked (numbers, ids, addresses and quoted values
//! become `<*>`, keeping units and keys: `380ms` → `<*>ms`, `max=50` →
//! `max=<*>`), then split into tokens. Lines are grouped by token count
//! and first token, and within a group a line joins the most similar
//! template if at least `similarity` of its tokens agree; the tokens that
//! differ become `<*>`. Memory is bounded by `max_templates`.

use rustc_hash::FxHashMap;

/// The wildcard that masked values and differing tokens become.
pub const WILDCARD: &str = "<*>";

/// Tuning of the miner.
#[derive(Debug, Clone, Copy)]
pub struct MinerConfig {
    /// Fraction of tokens that must agree for a line to join a template.
    pub similarity: f64,
    /// Templates kept at most; past it, a line joins its most similar
    /// template in its group whatever the similarity (or is refused when
    /// its group is empty).
    pub max_templates: usize,
    /// Lines are cut to this many tokens (a stack trace is one message).
    pub max_tokens: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            similarity: 0.5,
            max_templates: 5_000,
            max_tokens: 64,
        }
    }
}

/// Index of a template in its [`Miner`].
pub type TemplateId = usize;

#[derive(Debug, Clone)]
struct Template {
    tokens: Vec<String>,
    lines: u64,
}

/// A Drain-class template miner.
#[derive(Debug, Clone, Default)]
pub struct Miner {
    cfg: MinerConfig,
    templates: Vec<Template>,
    /// (token count, first token) → templates of that shape.
    groups: FxHashMap<(usize, String), Vec<TemplateId>>,
}

impl Miner {
    /// An empty miner.
    pub fn new(cfg: MinerConfig) -> Miner {
        Miner {
            cfg,
            ..Miner::default()
        }
    }

    /// Learns `line` and returns its template's id; `None` only when the
    /// template limit is reached and nothing of the line's shape is known.
    pub fn add(&mut self, line: &str) -> Option<TemplateId> {
        let tokens = self.tokens(line);
        let key = group_key(&tokens);
        let (best, sim) = self.closest(&key, &tokens);
        let full = self.templates.len() >= self.cfg.max_templates;
        match best {
            Some(id) if sim >= self.cfg.similarity || full => {
                let t = &mut self.templates[id];
                for (have, new) in t.tokens.iter_mut().zip(&tokens) {
                    if have != new && have != WILDCARD {
                        *have = WILDCARD.to_string();
                    }
                }
                t.lines += 1;
                Some(id)
            }
            _ if full => None,
            _ => {
                let id = self.templates.len();
                self.templates.push(Template { tokens, lines: 1 });
                self.groups.entry(key).or_default().push(id);
                Some(id)
            }
        }
    }

    /// The template `line` belongs to, without learning from it.
    pub fn lookup(&self, line: &str) -> Option<TemplateId> {
        let tokens = self.tokens(line);
        let (best, sim) = self.closest(&group_key(&tokens), &tokens);
        best.filter(|&id| {
            sim >= self.cfg.similarity
                && self.templates[id]
                    .tokens
                    .iter()
                    .zip(&tokens)
                    .all(|(t, l)| t == WILDCARD || t == l)
        })
    }

    /// The text of template `id`.
    pub fn template(&self, id: TemplateId) -> String {
        self.templates
            .get(id)
            .map(|t| t.tokens.join(" "))
            .unwrap_or_default()
    }

    /// Lines learnt into template `id`.
    pub fn lines(&self, id: TemplateId) -> u64 {
        self.templates.get(id).map_or(0, |t| t.lines)
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether no line was learnt.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    fn tokens(&self, line: &str) -> Vec<String> {
        mask(line)
            .split_whitespace()
            .take(self.cfg.max_tokens)
            .map(str::to_string)
            .collect()
    }

    /// The most similar template of the line's group, and the similarity:
    /// the fraction of tokens equal to the template's. A wildcard the
    /// template gained by merging matches nothing (as in Drain), so a
    /// template that grew general does not swallow other messages; a masked
    /// value matches a masked value.
    fn closest(&self, key: &(usize, String), tokens: &[String]) -> (Option<TemplateId>, f64) {
        let mut best = (None, -1.0);
        for &id in self.groups.get(key).map_or(&[][..], Vec::as_slice) {
            let t = &self.templates[id].tokens;
            let same = t.iter().zip(tokens).filter(|(a, b)| a == b).count();
            let sim = if tokens.is_empty() {
                1.0
            } else {
                same as f64 / tokens.len() as f64
            };
            if sim > best.1 {
                best = (Some(id), sim);
            }
        }
        best
    }
}

/// Lines of one shape are compared with each other only: same number of
/// tokens and same first token (the first token is usually the message's
/// verb or component; a masked one groups with all masked ones).
fn group_key(tokens: &[String]) -> (usize, String) {
    (tokens.len(), tokens.first().cloned().unwrap_or_default())
}

/// The line with its variable parts masked: quoted values, then within
/// each whitespace-separated token, addresses, ids and numbers (keeping a
/// number's unit and a pair's key).
pub fn mask(line: &str) -> String {
    let unquoted = mask_quoted(line);
    let mut out = String::with_capacity(unquoted.len());
    for (i, tok) in unquoted.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        mask_token(tok, &mut out);
    }
    out
}

/// Replaces `"…"` and `'…'` spans by a quoted wildcard. An apostrophe
/// inside a word (`can't`) does not open a quote.
fn mask_quoted(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        let opens = (c == '"' || (c == '\'' && !prev.is_some_and(char::is_alphanumeric)))
            && line[i + 1..].contains(c);
        if opens {
            let close = i + 1 + line[i + 1..].find(c).unwrap_or(0);
            out.push(c);
            out.push_str(WILDCARD);
            out.push(c);
            while chars.peek().is_some_and(|&(j, _)| j <= close) {
                chars.next();
            }
            prev = Some(c);
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Masks one token, writing it to `out`. Leading and trailing punctuation
/// stay; an address (IP, host:port, URL, e-mail) is masked whole; other
/// tokens are masked part by part between `/`, `=`, `:`, `,` and `;`.
fn mask_token(tok: &str, out: &mut String) {
    let core_start = tok
        .find(|c: char| c.is_alphanumeric() || matches!(c, '<' | '"' | '\'' | '['))
        .unwrap_or(tok.len());
    let core_end = tok
        .rfind(|c: char| c.is_alphanumeric() || matches!(c, '>' | '"' | '\'' | '%' | ']'))
        .map_or(core_start, |i| {
            i + tok[i..].chars().next().map_or(1, char::len_utf8)
        })
        .max(core_start);
    let (lead, core, trail) = (
        &tok[..core_start],
        &tok[core_start..core_end],
        &tok[core_end..],
    );
    out.push_str(lead);
    if is_address(core) {
        out.push_str(WILDCARD);
    } else {
        let mut part_start = 0;
        for (i, c) in core.char_indices() {
            if matches!(c, '/' | '=' | ':' | ',' | ';') {
                mask_part(&core[part_start..i], out);
                out.push(c);
                part_start = i + 1;
            }
        }
        mask_part(&core[part_start..], out);
    }
    out.push_str(trail);
}

/// Masks one part of a token: a number keeps its unit (`380ms` →
/// `<*>ms`, `12.5%` → `<*>%`); anything else holding a digit (an id, a
/// hash, a UUID) is masked whole; short version-like words (`v2`, `p99`,
/// `http2`) stay.
fn mask_part(part: &str, out: &mut String) {
    if !part.bytes().any(|b| b.is_ascii_digit()) {
        out.push_str(part);
        return;
    }
    let num_end = number_prefix(part);
    if num_end > 0 {
        let unit = &part[num_end..];
        if unit.len() <= 3 && unit.chars().all(|c| c.is_ascii_alphabetic() || c == '%') {
            out.push_str(WILDCARD);
            out.push_str(unit);
            return;
        }
    }
    let letters = part.bytes().take_while(u8::is_ascii_alphabetic).count();
    let digits = &part[letters..];
    if letters >= 1
        && !digits.is_empty()
        && digits.len() <= 2
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        out.push_str(part);
        return;
    }
    out.push_str(WILDCARD);
}

/// Length of a leading decimal number (`-12`, `3.5`, `1e6`), 0 if none.
fn number_prefix(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits_start = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
        i += 1;
    }
    if i == digits_start || !b[digits_start].is_ascii_digit() {
        return 0;
    }
    if i + 1 < b.len() && (b[i] == b'e' || b[i] == b'E') && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

/// An IP address (v4 or v6, with or without a port), `host:port`, a URL
/// or an e-mail address: all name a peer, whose identity is a value.
fn is_address(s: &str) -> bool {
    if s.contains("://") || (s.contains('@') && s.contains('.')) {
        return true;
    }
    let host = s.rsplit_once(':').map_or(s, |(h, port)| {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            s
        }
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let v4 = host.split('.').count() == 4
        && host
            .split('.')
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    let v6 = host.matches(':').count() >= 2
        && host
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    let host_port = host.len() < s.len() && host.contains('.') && !host.starts_with('.');
    v4 || v6 || host_port
}
