//! The syntax tree (PromQL, plus the record selectors of [`crate::records`])
//! and its printer. Printing gives PromQL that parses
//! back to the same tree (checked by a property test), which the test-script
//! runner relies on when it rewrites queries with `@`.

use std::fmt;

use sextant_storage::{MatchOp, Matcher};

use crate::records::RecordSelector;

/// Binary operators, in PromQL precedence classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `>`
    Gtr,
    /// `<`
    Lss,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
    /// `</`: a histogram's observations at or below a value.
    TrimUpper,
    /// `>/`: a histogram's observations above a value.
    TrimLower,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eql
            | BinOp::Neq
            | BinOp::Gtr
            | BinOp::Lss
            | BinOp::Gte
            | BinOp::Lte
            | BinOp::TrimUpper
            | BinOp::TrimLower => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 6,
        }
    }

    /// Comparison operators (filter unless `bool`).
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3 && !matches!(self, BinOp::TrimUpper | BinOp::TrimLower)
    }

    /// `</` and `>/`, which only histograms take.
    pub fn is_trim(self) -> bool {
        matches!(self, BinOp::TrimUpper | BinOp::TrimLower)
    }

    /// `and`, `or`, `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    pub(crate) fn text(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::TrimUpper => "</",
            BinOp::TrimLower => ">/",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggOp {
    /// The operator named `s`, if any.
    pub fn from_name(s: &str) -> Option<AggOp> {
        Some(match s {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "group" => AggOp::Group,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            "count_values" => AggOp::CountValues,
            "quantile" => AggOp::Quantile,
            "limitk" => AggOp::Limitk,
            "limit_ratio" => AggOp::LimitRatio,
            _ => return None,
        })
    }

    /// Its PromQL name.
    pub fn name(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::CountValues => "count_values",
            AggOp::Quantile => "quantile",
            AggOp::Limitk => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }

    /// Whether it takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggOp::Topk
                | AggOp::Bottomk
                | AggOp::CountValues
                | AggOp::Quantile
                | AggOp::Limitk
                | AggOp::LimitRatio
        )
    }
}

/// `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    /// `@ <unix seconds>`, stored in ms.
    Time(i64),
    /// `@ start()`
    Start,
    /// `@ end()`
    End,
}

/// An instant vector selector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name, when written before the braces.
    pub name: Option<String>,
    /// All matchers, the name's `__name__=` matcher included.
    pub matchers: Vec<Matcher>,
    /// `offset`, ms (negative allowed).
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<At>,
    /// How a range selector treats the edges of its window.
    pub edges: Edges,
}

/// Prometheus' extended selectors (`x[5m] anchored`, `x[5m] smoothed`,
/// `x smoothed`): a window's value at its start is the last sample before
/// it (anchored) or interpolated across it (smoothed, at the end too), so
/// `increase` is the exact difference with no extrapolation; a smoothed
/// instant selector reads the line between the samples around the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Edges {
    /// Samples inside the window only.
    #[default]
    Plain,
    /// The last sample at or before the start anchors the window.
    Anchored,
    /// Values at both edges are interpolated between their neighbours.
    Smoothed,
}

impl Edges {
    /// The keyword, or "" for a plain window.
    pub fn keyword(self) -> &'static str {
        match self {
            Edges::Plain => "",
            Edges::Anchored => "anchored",
            Edges::Smoothed => "smoothed",
        }
    }

    /// The functions whose answer a window of these edges keeps right.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Edges::Plain => &[],
            Edges::Anchored => &["changes", "delta", "increase", "rate", "resets"],
            Edges::Smoothed => &["delta", "increase", "rate"],
        }
    }
}

/// How a binary operation between vectors pairs series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorMatching {
    /// `on(...)` (true) or `ignoring(...)` (false).
    pub on: bool,
    /// The labels of `on`/`ignoring`.
    pub labels: Vec<String>,
    /// `group_left` / `group_right`, with their extra labels.
    pub group: Option<(Side, Vec<String>)>,
    /// `fill_left(v)` (or `fill(v)`): a match group the "many" side lacks
    /// (the left side, or the right under `group_right`) gets a series of
    /// value `v` there, labelled by the match group.
    pub fill_left: Option<f64>,
    /// `fill_right(v)` (or `fill(v)`): the same for the "one" side.
    pub fill_right: Option<f64>,
}

/// Which side of a binary operation is the "many" side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `group_left`: many on the left.
    Left,
    /// `group_right`: many on the right.
    Right,
}

/// A PromQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal.
    Number(f64),
    /// A string literal.
    Str(String),
    /// `metric{...}`
    Vector(VectorSelector),
    /// `metric{...}[range]`, range in ms.
    Matrix(VectorSelector, i64),
    /// `expr[range:step]` with its own offset and `@`.
    Subquery {
        /// The inner expression.
        expr: Box<Expr>,
        /// Range, ms.
        range: i64,
        /// Step, ms (`None`: the default).
        step: Option<i64>,
        /// `offset`, ms.
        offset: i64,
        /// `@` modifier.
        at: Option<At>,
    },
    /// `( expr )`
    Paren(Box<Expr>),
    /// `-expr` (`+expr` parses to `expr`).
    Neg(Box<Expr>),
    /// `lhs op rhs`
    Binary {
        /// Operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// `bool` modifier of comparisons.
        bool_mode: bool,
        /// `on`/`ignoring`/`group_*`, if written.
        matching: Option<VectorMatching>,
    },
    /// `op [by|without (labels)] ([param,] expr)`
    Aggregate {
        /// Operator.
        op: AggOp,
        /// The aggregated expression.
        expr: Box<Expr>,
        /// `topk`'s k, `quantile`'s φ, `count_values`' label.
        param: Option<Box<Expr>>,
        /// Grouping labels.
        grouping: Vec<String>,
        /// `without` (true) or `by` (false).
        without: bool,
    },
    /// `func(args...)`
    Call {
        /// Function name.
        func: String,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `logs(...)` or `spans(...)`, with `[range]` when written.
    Records {
        /// The selector (boxed: it is larger than the other variants, and
        /// the recursive parser's frames hold several expressions).
        selector: Box<RecordSelector>,
        /// Range, ms: records in `(t - range, t]`.
        range: Option<i64>,
    },
}

impl Expr {
    /// The expression without the parentheses around it.
    pub fn unparen(&self) -> &Expr {
        match self {
            Expr::Paren(x) => x.unparen(),
            e => e,
        }
    }

    /// The direct sub-expressions, left to right.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Subquery { expr, .. } | Expr::Paren(expr) | Expr::Neg(expr) => vec![expr],
            Expr::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            Expr::Aggregate { expr, param, .. } => {
                param.iter().map(|p| &**p).chain([&**expr]).collect()
            }
            Expr::Call { args, .. } => args.iter().collect(),
            Expr::Number(_)
            | Expr::Str(_)
            | Expr::Vector(_)
            | Expr::Matrix(..)
            | Expr::Records { .. } => Vec::new(),
        }
    }

    /// Every selector in the expression, left to right (what a query
    /// reads: for exemplar lookups and test-data checks).
    pub fn selectors(&self) -> Vec<&VectorSelector> {
        fn walk<'e>(e: &'e Expr, out: &mut Vec<&'e VectorSelector>) {
            match e {
                Expr::Vector(vs) | Expr::Matrix(vs, _) => out.push(vs),
                e => e.children().into_iter().for_each(|c| walk(c, out)),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// [`Expr::children`], mutable.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::Subquery { expr, .. } | Expr::Paren(expr) | Expr::Neg(expr) => vec![expr],
            Expr::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            Expr::Aggregate { expr, param, .. } => param
                .iter_mut()
                .map(|p| &mut **p)
                .chain([&mut **expr])
                .collect(),
            Expr::Call { args, .. } => args.iter_mut().collect(),
            Expr::Number(_)
            | Expr::Str(_)
            | Expr::Vector(_)
            | Expr::Matrix(..)
            | Expr::Records { .. } => Vec::new(),
        }
    }
}

pub(crate) fn fmt_duration(f: &mut fmt::Formatter<'_>, ms: i64) -> fmt::Result {
    if ms == 0 {
        return f.write_str("0s");
    }
    let mut rest = ms;
    if rest < 0 {
        f.write_str("-")?;
        rest = -rest;
    }
    for (unit, size) in [
        ("y", 31_536_000_000),
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            write!(f, "{}{unit}", rest / size)?;
            rest %= size;
        }
    }
    Ok(())
}

fn fmt_mods(f: &mut fmt::Formatter<'_>, offset: i64, at: Option<At>) -> fmt::Result {
    match at {
        Some(At::Time(ms)) => write!(f, " @ {}", fmt_float(ms as f64 / 1000.0))?,
        Some(At::Start) => f.write_str(" @ start()")?,
        Some(At::End) => f.write_str(" @ end()")?,
        None => {}
    }
    if offset != 0 {
        f.write_str(" offset ")?;
        fmt_duration(f, offset)?;
    }
    Ok(())
}

/// Formats a float as PromQL reads it back exactly.
pub fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v:?}")
    }
}

/// A label name as PromQL reads it back: bare when it is an identifier,
/// quoted otherwise (Prometheus 3 allows any UTF-8 name).
fn label_name(s: &str) -> String {
    let ident = !s.is_empty()
        && s.chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if ident { s.to_string() } else { quote(s) }
}

pub(crate) fn label_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| label_name(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Double-quotes a string with the escapes the PromQL lexer reads back.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Words the parser reads as keywords where a binary operator may follow;
/// a metric with such a name is printed as `{__name__="..."}`.
const KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "atan2",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "by",
    "without",
    "bool",
    "offset",
];

impl fmt::Display for VectorSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = self
            .name
            .as_deref()
            .filter(|n| !KEYWORDS.contains(&n.to_ascii_lowercase().as_str()));
        let rest: Vec<&Matcher> = self
            .matchers
            .iter()
            .filter(|m| !(bare.is_some() && m.name == "__name__" && m.op == MatchOp::Equal))
            .collect();
        if let Some(n) = bare {
            f.write_str(n)?;
        }
        if !rest.is_empty() || bare.is_none() {
            f.write_str("{")?;
            fmt_matchers(f, &rest)?;
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// Matchers as written between braces, comma-separated.
pub(crate) fn fmt_matchers(f: &mut fmt::Formatter<'_>, ms: &[&Matcher]) -> fmt::Result {
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        let op = match m.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{op}{}", label_name(&m.name), quote(&m.value))?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(v) => f.write_str(&fmt_float(*v)),
            Expr::Str(s) => f.write_str(&quote(s)),
            Expr::Vector(vs) => {
                write!(f, "{vs}")?;
                fmt_mods(f, vs.offset, vs.at)?;
                if vs.edges != Edges::Plain {
                    write!(f, " {}", vs.edges.keyword())?;
                }
                Ok(())
            }
            Expr::Matrix(vs, range) => {
                write!(f, "{vs}[")?;
                fmt_duration(f, *range)?;
                f.write_str("]")?;
                fmt_mods(f, vs.offset, vs.at)?;
                if vs.edges != Edges::Plain {
                    write!(f, " {}", vs.edges.keyword())?;
                }
                Ok(())
            }
            Expr::Subquery {
                expr,
                range,
                step,
                offset,
                at,
            } => {
                write!(f, "{expr}[")?;
                fmt_duration(f, *range)?;
                f.write_str(":")?;
                if let Some(s) = step {
                    fmt_duration(f, *s)?;
                }
                f.write_str("]")?;
                fmt_mods(f, *offset, *at)
            }
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Neg(e) => write!(f, "-{e}"),
            Expr::Binary {
                op,
                lhs,
                rhs,
                bool_mode,
                matching,
            } => {
                write!(f, "{lhs} {}", op.text())?;
                if *bool_mode {
                    f.write_str(" bool")?;
                }
                if let Some(m) = matching {
                    if m.on || !m.labels.is_empty() {
                        write!(
                            f,
                            " {}({})",
                            if m.on { "on" } else { "ignoring" },
                            label_list(&m.labels)
                        )?;
                    }
                    if let Some((side, labels)) = &m.group {
                        let s = if *side == Side::Left {
                            "group_left"
                        } else {
                            "group_right"
                        };
                        write!(f, " {s}({})", label_list(labels))?;
                    }
                    match (m.fill_left, m.fill_right) {
                        (Some(l), Some(r)) if l.to_bits() == r.to_bits() => {
                            write!(f, " fill({})", fmt_float(l))?
                        }
                        (l, r) => {
                            if let Some(l) = l {
                                write!(f, " fill_left({})", fmt_float(l))?;
                            }
                            if let Some(r) = r {
                                write!(f, " fill_right({})", fmt_float(r))?;
                            }
                        }
                    }
                }
                write!(f, " {rhs}")
            }
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
            } => {
                f.write_str(op.name())?;
                if *without || !grouping.is_empty() {
                    write!(
                        f,
                        " {} ({})",
                        if *without { "without" } else { "by" },
                        label_list(grouping)
                    )?;
                }
                f.write_str(" (")?;
                if let Some(p) = param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{expr})")
            }
            Expr::Records { selector, range } => {
                write!(f, "{selector}")?;
                if let Some(r) = range {
                    f.write_str("[")?;
                    fmt_duration(f, *r)?;
                    f.write_str("]")?;
                }
                Ok(())
            }
            Expr::Call { func, args } => {
                write!(f, "{func}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}
