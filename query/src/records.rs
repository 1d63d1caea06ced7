//! The cross-selector half of the language: log and span selectors, written
//! `logs(...)` and `spans(...)` so that no PromQL expression changes
//! meaning (PromQL has no functions of those names, so every such text was
//! an error before). Their syntax follows LogQL (line filters) and TraceQL
//! (span conditions, structural operators, `by`); docs/query-language.md
//! has the grammar. This module holds the syntax tree and its printer; the
//! parser is in `parser/selector.rs`, evaluation in [`eval`].

use std::fmt;

use sextant_storage::Matcher;

use crate::ast::{fmt_duration, fmt_matchers, label_list, quote};

pub(crate) mod derive;
pub(crate) mod eval;
pub(crate) mod join;

/// A line filter of a log selector (LogQL's).
#[derive(Debug, Clone, PartialEq)]
pub enum LineFilter {
    /// `|= "text"`: the body contains the text (case-sensitive).
    Contains(String),
    /// `!= "text"`: the body does not contain the text.
    NotContains(String),
    /// `|~ "re"`: the regex (RE2 syntax, unanchored) matches the body.
    Regex(String),
    /// `!~ "re"`: the regex does not match the body.
    NotRegex(String),
}

impl LineFilter {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            LineFilter::Contains(s) => ("|=", s),
            LineFilter::NotContains(s) => ("!=", s),
            LineFilter::Regex(s) => ("|~", s),
            LineFilter::NotRegex(s) => ("!~", s),
        }
    }
}

/// `logs({matchers} filters... | by(attrs))`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogSelector {
    /// Matchers on `service`, `level` and attributes.
    pub matchers: Vec<Matcher>,
    /// Line filters, all of which must hold.
    pub filters: Vec<LineFilter>,
    /// Attributes that split derived series beyond `service` and `level`.
    pub by: Vec<String>,
}

/// A comparison of a span's duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationCmp {
    /// `duration > d`
    Gtr,
    /// `duration >= d`
    Gte,
    /// `duration < d`
    Lss,
    /// `duration <= d`
    Lte,
}

impl DurationCmp {
    fn text(self) -> &'static str {
        match self {
            DurationCmp::Gtr => ">",
            DurationCmp::Gte => ">=",
            DurationCmp::Lss => "<",
            DurationCmp::Lte => "<=",
        }
    }
}

/// One `{...}` of a span selector: every condition must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanCond {
    /// Matchers on `service`, `name`, `kind`, `status` and attributes.
    pub matchers: Vec<Matcher>,
    /// Duration bounds, ms.
    pub durations: Vec<(DurationCmp, i64)>,
}

impl SpanCond {
    /// The duration bounds as an inclusive nanosecond interval.
    pub fn duration_bounds_ns(&self) -> (Option<i64>, Option<i64>) {
        let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
        for &(op, ms) in &self.durations {
            let ns = ms.saturating_mul(1_000_000);
            match op {
                DurationCmp::Gtr => lo = Some(lo.unwrap_or(i64::MIN).max(ns.saturating_add(1))),
                DurationCmp::Gte => lo = Some(lo.unwrap_or(i64::MIN).max(ns)),
                DurationCmp::Lss => hi = Some(hi.unwrap_or(i64::MAX).min(ns.saturating_sub(1))),
                DurationCmp::Lte => hi = Some(hi.unwrap_or(i64::MAX).min(ns)),
            }
        }
        (lo, hi)
    }
}

/// How the next `{...}` of a span selector relates to the spans so far
/// (TraceQL's structural operators: the result is the right-hand side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// `A > B`: spans B whose parent is an A.
    Child,
    /// `A >> B`: spans B with an A among their ancestors.
    Descendant,
    /// `A < B`: spans B that are the parent of an A.
    Parent,
    /// `A << B`: spans B that are an ancestor of an A (B "has descendant" A).
    Ancestor,
}

impl Relation {
    fn text(self) -> &'static str {
        match self {
            Relation::Child => ">",
            Relation::Descendant => ">>",
            Relation::Parent => "<",
            Relation::Ancestor => "<<",
        }
    }
}

/// `spans({cond} [rel {cond}]... | by(attrs))`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanSelector {
    /// The first condition.
    pub first: SpanCond,
    /// Structural steps, left to right.
    pub steps: Vec<(Relation, SpanCond)>,
    /// Attributes that split derived series beyond `service` and `operation`.
    pub by: Vec<String>,
}

impl SpanSelector {
    /// The condition the selected spans themselves meet (the last one).
    pub fn last(&self) -> &SpanCond {
        self.steps.last().map_or(&self.first, |(_, c)| c)
    }
}

/// A record selector.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordSelector {
    /// Log records.
    Logs(LogSelector),
    /// Spans.
    Spans(SpanSelector),
}

fn fmt_by(f: &mut fmt::Formatter<'_>, by: &[String]) -> fmt::Result {
    if by.is_empty() {
        return Ok(());
    }
    write!(f, " | by({})", label_list(by))
}

impl fmt::Display for SpanCond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        let refs: Vec<&Matcher> = self.matchers.iter().collect();
        fmt_matchers(f, &refs)?;
        for (i, (op, ms)) in self.durations.iter().enumerate() {
            if i > 0 || !refs.is_empty() {
                f.write_str(", ")?;
            }
            write!(f, "duration {} ", op.text())?;
            fmt_duration(f, *ms)?;
        }
        f.write_str("}")
    }
}

impl fmt::Display for RecordSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordSelector::Logs(l) => {
                f.write_str("logs({")?;
                let refs: Vec<&Matcher> = l.matchers.iter().collect();
                fmt_matchers(f, &refs)?;
                f.write_str("}")?;
                for lf in &l.filters {
                    let (op, s) = lf.parts();
                    write!(f, " {op} {}", quote(s))?;
                }
                fmt_by(f, &l.by)?;
                f.write_str(")")
            }
            RecordSelector::Spans(s) => {
                write!(f, "spans({}", s.first)?;
                for (rel, c) in &s.steps {
                    write!(f, " {} {c}", rel.text())?;
                }
                fmt_by(f, &s.by)?;
                f.write_str(")")
            }
        }
    }
}
