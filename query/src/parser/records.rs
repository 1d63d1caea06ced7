//! Parsing of `logs(...)` and `spans(...)` (grammar in
//! docs/query-language.md). Errors name what was expected and show a
//! well-formed example, since these selectors are new to most readers.

use sextant_storage::Matcher;

use super::Parser;
use crate::ast::Expr;
use crate::error::ParseError;
use crate::lexer::Tok;
use crate::records::{
    DurationCmp, LineFilter, LogSelector, RecordSelector, Relation, SpanCond, SpanSelector,
};

const LOG_HINT: &str = "e.g. logs({service=\"checkout\", level=\"error\"} |= \"timeout\")";
const SPAN_HINT: &str = "e.g. spans({service=\"checkout\", status=\"error\", duration > 500ms})";

impl Parser<'_> {
    /// `logs(...)` or `spans(...)`; the name is already consumed. Kept out
    /// of line so the recursive PromQL frames stay small.
    #[inline(never)]
    pub(super) fn record_selector(&mut self, logs: bool) -> Result<Expr, ParseError> {
        self.expect(Tok::LParen, "\"(\"")?;
        let selector = if logs {
            RecordSelector::Logs(self.log_selector()?)
        } else {
            RecordSelector::Spans(self.span_selector()?)
        };
        let hint = if logs { LOG_HINT } else { SPAN_HINT };
        if *self.peek() != Tok::RParen {
            return Err(self.err_here(&format!(
                "unexpected {} in {} selector, expected \")\"; {hint}",
                self.describe(),
                if logs { "log" } else { "span" }
            )));
        }
        self.next();
        Ok(Expr::Records {
            selector: Box::new(selector),
            range: None,
        })
    }

    fn log_selector(&mut self) -> Result<LogSelector, ParseError> {
        let (matchers, _) = self.conditions(false)?;
        let mut sel = LogSelector {
            matchers,
            ..LogSelector::default()
        };
        loop {
            let make: fn(String) -> LineFilter = match self.peek() {
                Tok::PipeEq => LineFilter::Contains,
                Tok::Neq => LineFilter::NotContains,
                Tok::PipeRe => LineFilter::Regex,
                Tok::ReNotMatch => LineFilter::NotRegex,
                Tok::Pipe => {
                    sel.by = self.by_clause(LOG_HINT)?;
                    return Ok(sel);
                }
                _ => return Ok(sel),
            };
            self.next();
            let pos = self.pos();
            let Tok::Str(text) = self.next() else {
                self.i -= 1;
                return Err(self.err_here(&format!(
                    "unexpected {} after a line filter, expected a string; {LOG_HINT}",
                    self.describe()
                )));
            };
            let f = make(text);
            if let LineFilter::Regex(re) | LineFilter::NotRegex(re) = &f
                && let Err(e) = regex::Regex::new(re)
            {
                return Err(ParseError::at(
                    self.src,
                    pos,
                    format!("invalid regular expression in line filter: {e}"),
                ));
            }
            sel.filters.push(f);
        }
    }

    fn span_selector(&mut self) -> Result<SpanSelector, ParseError> {
        let first = self.span_cond()?;
        let mut sel = SpanSelector {
            first,
            ..SpanSelector::default()
        };
        loop {
            let rel = match self.peek() {
                Tok::Gtr | Tok::Lss => {
                    let (t, pos) = (self.peek().clone(), self.pos());
                    self.next();
                    let doubled = *self.peek() == t && self.pos() == pos + 1;
                    if doubled {
                        self.next();
                    }
                    match (t == Tok::Gtr, doubled) {
                        (true, false) => Relation::Child,
                        (true, true) => Relation::Descendant,
                        (false, false) => Relation::Parent,
                        (false, true) => Relation::Ancestor,
                    }
                }
                Tok::Pipe => {
                    sel.by = self.by_clause(SPAN_HINT)?;
                    return Ok(sel);
                }
                _ => return Ok(sel),
            };
            let cond = self.span_cond()?;
            sel.steps.push((rel, cond));
        }
    }

    fn span_cond(&mut self) -> Result<SpanCond, ParseError> {
        let (matchers, durations) = self.conditions(true)?;
        Ok(SpanCond {
            matchers,
            durations,
        })
    }

    /// `| by(attr, ...)`.
    fn by_clause(&mut self, hint: &str) -> Result<Vec<String>, ParseError> {
        self.next();
        if !self.keyword("by") {
            return Err(self.err_here(&format!(
                "unexpected {} after \"|\", expected \"by(...)\" or a line filter; {hint}",
                self.describe()
            )));
        }
        self.next();
        self.label_list()
    }

    /// `{name op "value", ...}`; for spans also `duration > 10ms`.
    #[allow(clippy::type_complexity)]
    fn conditions(
        &mut self,
        spans: bool,
    ) -> Result<(Vec<Matcher>, Vec<(DurationCmp, i64)>), ParseError> {
        let hint = if spans { SPAN_HINT } else { LOG_HINT };
        if *self.peek() != Tok::LBrace {
            return Err(self.err_here(&format!(
                "unexpected {}, expected \"{{\" opening a selector; {hint}",
                self.describe()
            )));
        }
        self.next();
        let (mut matchers, mut durations) = (Vec::new(), Vec::new());
        loop {
            let name = match self.next() {
                Tok::RBrace => break,
                Tok::Ident(s) | Tok::Str(s) => s,
                _ => {
                    self.i -= 1;
                    return Err(self.err_here(&format!(
                        "unexpected {} in selector, expected a field or attribute name; {hint}",
                        self.describe()
                    )));
                }
            };
            let cmp = match self.peek() {
                Tok::Gtr => Some(DurationCmp::Gtr),
                Tok::Gte => Some(DurationCmp::Gte),
                Tok::Lss => Some(DurationCmp::Lss),
                Tok::Lte => Some(DurationCmp::Lte),
                _ => None,
            };
            if let Some(cmp) = cmp {
                if !(spans && name == "duration") {
                    return Err(self.err_here(
                        "only a span's duration compares with <, <=, > or >= (spans({duration > 1s}))",
                    ));
                }
                self.next();
                durations.push((cmp, self.duration()?));
            } else {
                let no_op = format!("after \"{name}\", expected =, !=, =~ or !~; {hint}");
                let no_value = format!("after \"{name}\", expected a quoted string; {hint}");
                matchers.push(self.matcher_tail(name, &no_op, &no_value)?);
            }
            if self.list_end(&format!("in selector, expected \",\" or \"}}\"; {hint}"))? {
                break;
            }
        }
        Ok((matchers, durations))
    }
}
