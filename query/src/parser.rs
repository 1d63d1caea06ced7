//! PromQL parser: precedence climbing over the tokens of [`crate::lexer`],
//! with Prometheus' type checks, so a parsed tree is well-typed.

use sextant_storage::{MatchOp, Matcher};

use crate::ast::{AggOp, At, BinOp, Edges, Expr, Side, VectorMatching, VectorSelector};
use crate::error::ParseError;
use crate::lexer::{Tok, Token, lex};
use crate::types::{ValueType, signature};
use crate::typing::{is_records, record_type, value_type};

mod durations;
mod records;

pub use durations::DurationContext;

/// Parses a PromQL expression for an instant evaluation (`step()` and
/// `range()` are 0).
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    parse_with(src, DurationContext::default())
}

/// Parses a PromQL expression for an evaluation whose step and range
/// `step()` and `range()` stand for.
pub fn parse_with(src: &str, durations: DurationContext) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        i: 0,
        depth: 0,
        height: 0,
        durations,
        empty_selector_ok: false,
    };
    if p.peek() == &Tok::Eof {
        return Err(p.err_here("no expression found in input"));
    }
    let e = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return Err(p.err_here(&format!("unexpected {}", p.describe())));
    }
    check(src, &e)?;
    Ok(e)
}

/// Deepest nesting accepted, both of the parser's own recursion and of the
/// tree it builds: every later walk of the tree (typing, evaluation,
/// printing, dropping) recurses, so a deeper tree would only exhaust the
/// stack of a server thread, never serve a real query.
const MAX_DEPTH: usize = 256;

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    /// Recursion depth of `expr`.
    depth: usize,
    /// Height of the tree the last production returned. Counted on the
    /// built tree, not on the recursion: `1+1+…` and `x[1m:][1m:]…` are
    /// parsed in a loop but build one level per operator.
    height: usize,
    /// What `step()` and `range()` stand for.
    durations: DurationContext,
    /// A selector whose matchers all match the empty string is allowed
    /// (the label selector of `info()`).
    empty_selector_ok: bool,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err_here(&self, msg: &str) -> ParseError {
        ParseError::at(self.src, self.pos(), msg.to_string())
    }

    fn describe(&self) -> String {
        match self.peek() {
            Tok::Eof => "end of input".into(),
            Tok::Ident(s) => format!("identifier \"{s}\""),
            Tok::Number(n) => format!("number \"{n}\""),
            Tok::Duration(_) => "duration".into(),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::RParen => "right parenthesis \")\"".into(),
            Tok::LParen => "left parenthesis \"(\"".into(),
            Tok::RBrace => "\"}\"".into(),
            Tok::LBrace => "\"{\"".into(),
            Tok::RBracket => "right bracket \"]\"".into(),
            Tok::LBracket => "left bracket \"[\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Colon => "\":\"".into(),
            other => format!("{other:?}"),
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), ParseError> {
        if *self.peek() == t {
            self.next();
            Ok(())
        } else {
            Err(self.err_here(&format!("unexpected {}, expected {what}", self.describe())))
        }
    }

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Add => BinOp::Add,
            Tok::Sub => BinOp::Sub,
            Tok::Mul => BinOp::Mul,
            Tok::Div => BinOp::Div,
            Tok::Mod => BinOp::Mod,
            Tok::Pow => BinOp::Pow,
            Tok::Eql => BinOp::Eql,
            Tok::Neq => BinOp::Neq,
            Tok::Gtr => BinOp::Gtr,
            Tok::Lss => BinOp::Lss,
            Tok::Gte => BinOp::Gte,
            Tok::Lte => BinOp::Lte,
            Tok::TrimUpper => BinOp::TrimUpper,
            Tok::TrimLower => BinOp::TrimLower,
            Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
                "and" => BinOp::And,
                "or" => BinOp::Or,
                "unless" => BinOp::Unless,
                "atan2" => BinOp::Atan2,
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Records that the tree just built is `h` levels high, refusing it
    /// past [`MAX_DEPTH`].
    fn built(&mut self, h: usize) -> Result<(), ParseError> {
        self.height = h;
        if h > MAX_DEPTH {
            return Err(self.err_here(&format!(
                "query is nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        Ok(())
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        self.depth += 1;
        let res = self.expr_inner(min_prec);
        self.depth -= 1;
        res
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(&format!(
                "query is nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        let mut lhs = self.unary()?;
        let mut h = self.height;
        while let Some(op) = self.binop() {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_pos = self.pos();
            self.next();
            let mut bool_mode = false;
            if self.keyword("bool") {
                if !op.is_comparison() {
                    return Err(
                        self.err_here("bool modifier can only be used on comparison operators")
                    );
                }
                self.next();
                bool_mode = true;
            }
            let matching = self.matching()?;
            // `^` is right-associative, the others left-associative.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            h = h.max(self.height) + 1;
            self.built(h)?;
            lhs = self.binary(op, lhs, rhs, bool_mode, matching, op_pos)?;
        }
        self.height = h;
        Ok(lhs)
    }

    fn binary(
        &self,
        op: BinOp,
        lhs: Expr,
        rhs: Expr,
        bool_mode: bool,
        matching: Option<VectorMatching>,
        pos: usize,
    ) -> Result<Expr, ParseError> {
        let (lt, rt) = (value_type(&lhs), value_type(&rhs));
        let err = |m: &str| ParseError::at(self.src, pos, m.to_string());
        let (lr, rr) = (record_type(&lhs), record_type(&rhs));
        if lr.is_some() || rr.is_some() {
            crate::typing::check_join(op, lr.unwrap_or(lt), rr.unwrap_or(rt), matching.as_ref())
                .map_err(|m| err(&m))?;
            return Ok(Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                bool_mode,
                matching,
            });
        }
        for t in [lt, rt] {
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err(err(
                    "binary expression must contain only scalar and instant vector types",
                ));
            }
        }
        if op.is_comparison() && lt == ValueType::Scalar && rt == ValueType::Scalar && !bool_mode {
            return Err(err("comparisons between scalars must use BOOL modifier"));
        }
        if op.is_set() && (lt == ValueType::Scalar || rt == ValueType::Scalar) {
            return Err(err(&format!(
                "set operator \"{}\" not allowed in binary scalar expression",
                format!("{op:?}").to_lowercase()
            )));
        }
        if let Some(m) = &matching {
            if lt == ValueType::Scalar || rt == ValueType::Scalar {
                return Err(err("vector matching only allowed between instant vectors"));
            }
            if op.is_set() && (m.fill_left.is_some() || m.fill_right.is_some()) {
                return Err(err(&format!(
                    "no fill modifier allowed for \"{}\" operation",
                    format!("{op:?}").to_lowercase()
                )));
            }
            if op.is_set() && m.group.is_some() {
                return Err(err(&format!(
                    "no grouping allowed for \"{}\" operation",
                    format!("{op:?}").to_lowercase()
                )));
            }
            if let Some((_, include)) = &m.group
                && m.on
                && let Some(l) = include.iter().find(|l| m.labels.contains(l))
            {
                return Err(err(&format!(
                    "label \"{l}\" must not occur in ON and GROUP clause at once"
                )));
            }
        }
        Ok(Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            bool_mode,
            matching,
        })
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, "\"(\"")?;
        let mut out = Vec::new();
        loop {
            match self.next() {
                Tok::RParen => return Ok(out),
                Tok::Ident(s) => out.push(s),
                Tok::Str(s) => out.push(s),
                _ => {
                    self.i -= 1;
                    return Err(self.err_here(&format!(
                        "unexpected {} in grouping opts, expected label",
                        self.describe()
                    )));
                }
            }
            match self.next() {
                Tok::Comma => {}
                Tok::RParen => return Ok(out),
                _ => {
                    self.i -= 1;
                    return Err(self.err_here(&format!(
                        "unexpected {} in grouping opts, expected \")\" or \",\"",
                        self.describe()
                    )));
                }
            }
        }
    }

    fn matching(&mut self) -> Result<Option<VectorMatching>, ParseError> {
        let mut m = VectorMatching::default();
        let mut any = false;
        if self.keyword("on") || self.keyword("ignoring") {
            m.on = self.keyword("on");
            self.next();
            m.labels = self.label_list()?;
            any = true;
        }
        if self.keyword("group_left") || self.keyword("group_right") {
            let side = if self.keyword("group_left") {
                Side::Left
            } else {
                Side::Right
            };
            self.next();
            let labels = if *self.peek() == Tok::LParen {
                self.label_list()?
            } else {
                Vec::new()
            };
            m.group = Some((side, labels));
            any = true;
        }
        while let Some(kw) = ["fill_left", "fill_right", "fill"].into_iter().find(|k| {
            self.keyword(k)
                && self
                    .toks
                    .get(self.i + 1)
                    .is_some_and(|t| t.tok == Tok::LParen)
        }) {
            let pos = self.pos();
            self.next();
            self.next();
            let v = self.fill_value()?;
            self.expect(Tok::RParen, "\")\"")?;
            let (left, right) = match kw {
                "fill_left" => (true, false),
                "fill_right" => (false, true),
                _ => (true, true),
            };
            if (left && m.fill_left.is_some()) || (right && m.fill_right.is_some()) {
                return Err(ParseError::at(
                    self.src,
                    pos,
                    format!("{kw} set more than once"),
                ));
            }
            if left {
                m.fill_left = Some(v);
            }
            if right {
                m.fill_right = Some(v);
            }
            any = true;
        }
        Ok(any.then_some(m))
    }

    /// The value of `fill(…)`: a number, signed, `NaN` or `Inf`.
    fn fill_value(&mut self) -> Result<f64, ParseError> {
        let neg = match self.peek() {
            Tok::Sub => {
                self.next();
                true
            }
            Tok::Add => {
                self.next();
                false
            }
            _ => false,
        };
        match self.next() {
            Tok::Number(n) => Ok(if neg { -n } else { n }),
            _ => {
                self.i -= 1;
                Err(self.err_here(&format!(
                    "unexpected {} in fill modifier, expected a number",
                    self.describe()
                )))
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Sub | Tok::Add => {
                let neg = *self.peek() == Tok::Sub;
                let pos = self.pos();
                self.next();
                // Unary binds weaker than `^` only: -a^b is -(a^b).
                let e = self.expr(BinOp::Pow.precedence())?;
                self.built(self.height + 1)?;
                let t = value_type(&e);
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(ParseError::at(
                        self.src,
                        pos,
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got \"{}\"",
                            t.name()
                        ),
                    ));
                }
                Ok(match (neg, e) {
                    (false, e) => e,
                    (true, Expr::Number(v)) => Expr::Number(-v),
                    (true, e) => Expr::Neg(Box::new(e)),
                })
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Tok::LBracket => {
                    let h = self.height + 1;
                    self.built(h)?;
                    e = self.range(e)?;
                    self.height = h;
                }
                Tok::At => self.at(&mut e)?,
                Tok::Ident(s) if s.eq_ignore_ascii_case("offset") => self.offset(&mut e)?,
                Tok::Ident(s)
                    if s.eq_ignore_ascii_case("anchored") || s.eq_ignore_ascii_case("smoothed") =>
                {
                    self.edges(&mut e)?
                }
                _ => return Ok(e),
            }
        }
    }

    fn duration(&mut self) -> Result<i64, ParseError> {
        match self.next() {
            Tok::Duration(d) => Ok(d),
            Tok::Number(n) if n.fract() == 0.0 && n.is_finite() => Ok((n * 1000.0) as i64),
            _ => {
                self.i -= 1;
                Err(self.err_here(&format!(
                    "unexpected {}, expected duration",
                    self.describe()
                )))
            }
        }
    }

    fn range(&mut self, e: Expr) -> Result<Expr, ParseError> {
        let pos = self.pos();
        self.next();
        let range = self.duration_expr()?;
        if *self.peek() == Tok::Colon {
            self.next();
            let step = if *self.peek() == Tok::RBracket {
                None
            } else {
                Some(self.duration_expr()?)
            };
            self.expect(Tok::RBracket, "\"]\"")?;
            if value_type(&e) != ValueType::Vector {
                return Err(ParseError::at(
                    self.src,
                    pos,
                    format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        value_type(&e).name()
                    ),
                ));
            }
            return Ok(Expr::Subquery {
                expr: Box::new(e),
                range,
                step,
                offset: 0,
                at: None,
            });
        }
        self.expect(Tok::RBracket, "\"]\"")?;
        match e {
            Expr::Records {
                selector,
                range: None,
            } => {
                if range <= 0 {
                    return Err(ParseError::at(
                        self.src,
                        pos,
                        "range selector must be positive".into(),
                    ));
                }
                Ok(Expr::Records {
                    selector,
                    range: Some(range),
                })
            }
            Expr::Vector(vs) if vs.offset == 0 && vs.at.is_none() => {
                if range <= 0 {
                    return Err(ParseError::at(
                        self.src,
                        pos,
                        "range selector must be positive".into(),
                    ));
                }
                Ok(Expr::Matrix(vs, range))
            }
            Expr::Vector(_) => Err(ParseError::at(
                self.src,
                pos,
                "no offset or @ modifiers allowed before range".into(),
            )),
            _ => Err(ParseError::at(
                self.src,
                pos,
                "ranges only allowed for vector selectors".into(),
            )),
        }
    }

    fn modifiers<'e>(&self, e: &'e mut Expr) -> Option<(&'e mut i64, &'e mut Option<At>)> {
        match e {
            Expr::Vector(vs) | Expr::Matrix(vs, _) => Some((&mut vs.offset, &mut vs.at)),
            Expr::Subquery { offset, at, .. } => Some((offset, at)),
            _ => None,
        }
    }

    fn offset(&mut self, e: &mut Expr) -> Result<(), ParseError> {
        let pos = self.pos();
        self.next();
        let d = self.duration_term()?;
        let src = self.src;
        let Some((offset, _)) = self.modifiers(e) else {
            return Err(ParseError::at(src, pos, "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery".into()));
        };
        if *offset != 0 {
            return Err(ParseError::at(
                src,
                pos,
                "offset may not be set multiple times".into(),
            ));
        }
        *offset = d;
        Ok(())
    }

    /// `anchored` or `smoothed` after a range selector.
    fn edges(&mut self, e: &mut Expr) -> Result<(), ParseError> {
        let pos = self.pos();
        let Tok::Ident(word) = self.next() else {
            return Err(self.err_here("expected anchored or smoothed"));
        };
        let edges = if word.eq_ignore_ascii_case("anchored") {
            Edges::Anchored
        } else {
            Edges::Smoothed
        };
        let why = match e {
            Expr::Matrix(vs, _) if vs.edges == Edges::Plain => {
                vs.edges = edges;
                return Ok(());
            }
            Expr::Vector(vs) if vs.edges == Edges::Plain && edges == Edges::Smoothed => {
                vs.edges = edges;
                return Ok(());
            }
            Expr::Vector(vs) if vs.edges == Edges::Plain => {
                "anchored applies to range selectors (x[5m] anchored)".to_string()
            }
            Expr::Matrix(..) | Expr::Vector(_) => {
                "anchored and smoothed may not be set together or twice".to_string()
            }
            _ => format!("{} modifier must follow a range selector", edges.keyword()),
        };
        Err(ParseError::at(self.src, pos, why))
    }

    fn at(&mut self, e: &mut Expr) -> Result<(), ParseError> {
        let pos = self.pos();
        self.next();
        let value = match self.next() {
            Tok::Number(n) => At::Time((n * 1000.0).round() as i64),
            Tok::Duration(ms) => At::Time(ms),
            Tok::Sub => match self.next() {
                Tok::Number(n) => At::Time((-n * 1000.0).round() as i64),
                _ => {
                    return Err(ParseError::at(
                        self.src,
                        pos,
                        "unexpected token after @, expected timestamp".into(),
                    ));
                }
            },
            Tok::Ident(f) if f == "start" || f == "end" => {
                self.expect(Tok::LParen, "\"(\"")?;
                self.expect(Tok::RParen, "\")\"")?;
                if f == "start" { At::Start } else { At::End }
            }
            _ => {
                self.i -= 1;
                return Err(self.err_here(&format!(
                    "unexpected {}, expected timestamp",
                    self.describe()
                )));
            }
        };
        if let At::Time(ms) = value
            && !(-9.2e15..9.2e15).contains(&(ms as f64))
        {
            return Err(ParseError::at(
                self.src,
                pos,
                "timestamp out of bounds for @ modifier".into(),
            ));
        }
        let src = self.src;
        let Some((_, at)) = self.modifiers(e) else {
            return Err(ParseError::at(src, pos, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery".into()));
        };
        if at.is_some() {
            return Err(ParseError::at(
                src,
                pos,
                "@ <timestamp> may not be set multiple times".into(),
            ));
        }
        *at = Some(value);
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        // Leaves; the arms that nest set the height of what they build.
        self.height = 1;
        match self.next() {
            Tok::Number(n) => Ok(Expr::Number(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::LParen => {
                let e = self.expr(0)?;
                self.built(self.height + 1)?;
                self.expect(Tok::RParen, "\")\"")?;
                Ok(Expr::Paren(Box::new(e)))
            }
            Tok::LBrace => {
                self.i -= 1;
                let matchers = self.matchers(None)?;
                self.selector(None, matchers, pos)
            }
            Tok::Ident(name) => {
                if (name == "logs" || name == "spans") && *self.peek() == Tok::LParen {
                    return self.record_selector(name == "logs");
                }
                if let Some(op) = AggOp::from_name(&name.to_ascii_lowercase())
                    && (*self.peek() == Tok::LParen
                        || self.keyword("by")
                        || self.keyword("without"))
                {
                    return self.aggregate(op, pos);
                }
                if *self.peek() == Tok::LParen {
                    return self.call(name, pos);
                }
                let matchers = if *self.peek() == Tok::LBrace {
                    self.matchers(Some(&name))?
                } else {
                    vec![Matcher::equal("__name__", name.clone())]
                };
                self.selector(Some(name), matchers, pos)
            }
            // A duration where a number is expected means seconds (`1h` = 3600).
            Tok::Duration(ms) => Ok(Expr::Number(ms as f64 / 1000.0)),
            Tok::Eof => Err(ParseError::at(
                self.src,
                pos,
                "unexpected end of input".into(),
            )),
            _ => {
                self.i -= 1;
                Err(self.err_here(&format!("unexpected {}", self.describe())))
            }
        }
    }

    fn selector(
        &self,
        name: Option<String>,
        matchers: Vec<Matcher>,
        pos: usize,
    ) -> Result<Expr, ParseError> {
        if !self.empty_selector_ok && matchers.iter().all(|m| m.matches_empty()) {
            return Err(ParseError::at(
                self.src,
                pos,
                "vector selector must contain at least one non-empty matcher".into(),
            ));
        }
        Ok(Expr::Vector(VectorSelector {
            name,
            matchers,
            offset: 0,
            at: None,
            edges: Edges::Plain,
        }))
    }

    fn matchers(&mut self, name: Option<&str>) -> Result<Vec<Matcher>, ParseError> {
        self.expect(Tok::LBrace, "\"{\"")?;
        let mut out = Vec::new();
        if let Some(n) = name {
            out.push(Matcher::equal("__name__", n));
        }
        loop {
            let label = match self.next() {
                Tok::RBrace => break,
                Tok::Ident(s) | Tok::Str(s) => s,
                _ => {
                    self.i -= 1;
                    return Err(self.err_here(&format!(
                        "unexpected {} in label matching, expected label",
                        self.describe()
                    )));
                }
            };
            // A bare quoted string is a metric name: {"my.metric"}.
            if matches!(self.peek(), Tok::Comma | Tok::RBrace) {
                if name.is_some() || out.iter().any(|m: &Matcher| m.name == "__name__") {
                    return Err(self.err_here("metric name must not be set twice"));
                }
                out.push(Matcher::equal("__name__", label));
            } else {
                out.push(self.matcher_tail(
                    label,
                    "in label matching, expected label matching operator",
                    "in label matching, expected string",
                )?);
            }
            if self.list_end("in label matching, expected \",\" or \"}\"")? {
                break;
            }
        }
        Ok(out)
    }

    /// The operator and quoted value after a matcher's name; the error
    /// says "unexpected TOKEN" then `no_op` or `no_value`.
    fn matcher_tail(
        &mut self,
        name: String,
        no_op: &str,
        no_value: &str,
    ) -> Result<Matcher, ParseError> {
        let op = match self.next() {
            Tok::Assign => MatchOp::Equal,
            Tok::Neq => MatchOp::NotEqual,
            Tok::ReMatch => MatchOp::Regex,
            Tok::ReNotMatch => MatchOp::NotRegex,
            _ => {
                self.i -= 1;
                return Err(self.err_here(&format!("unexpected {} {no_op}", self.describe())));
            }
        };
        let Tok::Str(value) = self.next() else {
            self.i -= 1;
            return Err(self.err_here(&format!("unexpected {} {no_value}", self.describe())));
        };
        let pos = self.pos();
        Matcher::new(op, name, value).map_err(|e| ParseError::at(self.src, pos, e.to_string()))
    }

    /// After an item of a braced list: `,` (false) or `}` (true, the list
    /// is closed); anything else is "unexpected TOKEN" then `what`.
    fn list_end(&mut self, what: &str) -> Result<bool, ParseError> {
        match self.next() {
            Tok::Comma => Ok(false),
            Tok::RBrace => Ok(true),
            _ => {
                self.i -= 1;
                Err(self.err_here(&format!("unexpected {} {what}", self.describe())))
            }
        }
    }

    fn grouping(
        &mut self,
        grouping: &mut Vec<String>,
        without: &mut bool,
    ) -> Result<bool, ParseError> {
        if self.keyword("by") || self.keyword("without") {
            *without = self.keyword("without");
            self.next();
            *grouping = self.label_list()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `( expr, ... )`, the parentheses included.
    /// `( expr, … )`; from argument `label_selector_from` on, selectors
    /// may match everything (`info(v, {data=~".*"})`).
    fn call_args(&mut self, label_selector_from: usize) -> Result<Vec<Expr>, ParseError> {
        self.expect(Tok::LParen, "\"(\"")?;
        let mut args = Vec::new();
        let mut h = 0;
        while *self.peek() != Tok::RParen {
            self.empty_selector_ok = args.len() >= label_selector_from;
            let arg = self.expr(0);
            self.empty_selector_ok = false;
            args.push(arg?);
            h = h.max(self.height);
            if *self.peek() != Tok::Comma {
                break;
            }
            self.next();
        }
        self.expect(Tok::RParen, "\")\"")?;
        self.built(h + 1)?;
        Ok(args)
    }

    fn aggregate(&mut self, op: AggOp, pos: usize) -> Result<Expr, ParseError> {
        let (mut grouping, mut without) = (Vec::new(), false);
        let before = self.grouping(&mut grouping, &mut without)?;
        let mut args = self.call_args(usize::MAX)?;
        if !before {
            self.grouping(&mut grouping, &mut without)?;
        }
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(ParseError::at(
                self.src,
                pos,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        }
        let expr = args.pop().unwrap_or(Expr::Number(0.0));
        let param = args.pop().map(Box::new);
        if let Some(t) = record_type(&expr) {
            crate::typing::check_aggregate(op, t, param.as_deref(), &grouping, without)
                .map_err(|m| ParseError::at(self.src, pos, m))?;
            return Ok(Expr::Aggregate {
                op,
                expr: Box::new(expr),
                param,
                grouping,
                without,
            });
        }
        if value_type(&expr) != ValueType::Vector {
            return Err(ParseError::at(
                self.src,
                pos,
                format!(
                    "expected type instant vector in aggregation expression, got {}",
                    value_type(&expr).name()
                ),
            ));
        }
        if let Some(p) = &param {
            let want = if op == AggOp::CountValues {
                ValueType::String
            } else {
                ValueType::Scalar
            };
            if value_type(p) != want {
                return Err(ParseError::at(
                    self.src,
                    pos,
                    format!(
                        "expected type {} in aggregation parameter, got {}",
                        want.name(),
                        value_type(p).name()
                    ),
                ));
            }
        }
        Ok(Expr::Aggregate {
            op,
            expr: Box::new(expr),
            param,
            grouping,
            without,
        })
    }

    fn call(&mut self, name: String, pos: usize) -> Result<Expr, ParseError> {
        let Some(sig) = signature(&name) else {
            return Err(ParseError::at(
                self.src,
                pos,
                format!("unknown function with name \"{name}\""),
            ));
        };
        let mut args = self.call_args(if name == "info" { 1 } else { usize::MAX })?;
        let (min, max) = (
            sig.args.len() - sig.optional,
            if sig.variadic {
                usize::MAX
            } else {
                sig.args.len()
            },
        );
        if args.len() < min || args.len() > max {
            let expected = if sig.optional > 0 || sig.variadic {
                format!("at least {min}")
            } else {
                min.to_string()
            };
            let msg = if args.len() > max && max != usize::MAX {
                format!(
                    "expected at most {max} argument(s) in call to \"{name}\", got {}",
                    args.len()
                )
            } else {
                format!(
                    "expected {expected} argument(s) in call to \"{name}\", got {}",
                    args.len()
                )
            };
            return Err(ParseError::at(self.src, pos, msg));
        }
        for (i, a) in args.iter().enumerate() {
            let want = sig.args[i.min(sig.args.len() - 1)];
            let got = match record_type(a) {
                Some(t) if is_records(want) => t,
                // The metric expression whose exemplars are wanted may be
                // a bare range selector too.
                _ if name == "exemplar_traces" && value_type(a) == ValueType::Matrix => want,
                _ => value_type(a),
            };
            if got != want {
                return Err(ParseError::at(
                    self.src,
                    pos,
                    format!(
                        "expected type {} in call to function \"{name}\", got {}",
                        want.name(),
                        got.name()
                    ),
                ));
            }
        }
        crate::typing::check_call(&name, &args).map_err(|m| ParseError::at(self.src, pos, m))?;
        if name == "info" {
            crate::info::normalise(&mut args).map_err(|m| ParseError::at(self.src, pos, m))?;
        }
        Ok(Expr::Call { func: name, args })
    }
}

/// Checks that remain after parsing (none beyond the parser's own today).
fn check(_src: &str, _e: &Expr) -> Result<(), ParseError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_associativity() {
        let p = |s: &str| parse(s).unwrap().to_string();
        assert_eq!(p("1 + 2 * 3"), "1.0 + 2.0 * 3.0");
        assert!(
            matches!(parse("2 ^ 3 ^ 2").unwrap(), Expr::Binary { op: BinOp::Pow, ref rhs, .. } if matches!(**rhs, Expr::Binary { .. }))
        );
        assert!(matches!(parse("-2 ^ 2").unwrap(), Expr::Neg(_)));
        assert!(
            matches!(parse("a - b - c").unwrap(), Expr::Binary { ref lhs, .. } if matches!(**lhs, Expr::Binary { .. }))
        );
    }

    #[test]
    fn selectors_and_modifiers() {
        let e = parse(r#"rate(http_requests_total{job="api", code=~"5.."}[5m] offset -1h @ 100)"#)
            .unwrap();
        assert_eq!(
            e.to_string(),
            r#"rate(http_requests_total{job="api", code=~"5.."}[5m] @ 100.0 offset -1h)"#
        );
        let e = parse("sum by (job) (rate(x[1m:30s]))").unwrap();
        assert_eq!(e.to_string(), "sum by (job) (rate(x[1m:30s]))");
        assert_eq!(
            parse("topk(3, x) without (a)").unwrap().to_string(),
            "topk without (a) (3.0, x)"
        );
        assert_eq!(
            parse(r#"{"my.metric", a="b"}"#).unwrap().to_string(),
            r#"{__name__="my.metric", a="b"}"#
        );
        assert_eq!(
            parse("a / on(x) group_left(y) b").unwrap().to_string(),
            "a / on(x) group_left(y) b"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // As the server runs queries: on a thread of the documented size.
        std::thread::Builder::new()
            .stack_size(crate::STACK_BYTES)
            .spawn(deep_nesting)
            .unwrap()
            .join()
            .unwrap();
    }

    fn deep_nesting() {
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(
            parse(&deep)
                .unwrap_err()
                .message
                .contains("nested too deeply")
        );
        let unary = format!("{}1", "-".repeat(100_000));
        assert!(
            parse(&unary)
                .unwrap_err()
                .message
                .contains("nested too deeply")
        );
        let ok = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&ok).is_ok());
        // Chains parsed in a loop still build one level per operator: the
        // tree's height is what is bounded (issue 19: 3000 `+` aborted the
        // server with a stack overflow).
        for deep in [
            vec!["1"; 3000].join("+"),
            vec!["x"; 50_000].join(" or "),
            format!("{}x{}", "abs(".repeat(3000), ")".repeat(3000)),
            format!("sum({})", vec!["x"; 3000].join("*")),
        ] {
            let err = parse(&deep).unwrap_err();
            assert!(err.message.contains("nested too deeply"), "{}", err.message);
        }
        assert!(parse(&vec!["1"; MAX_DEPTH].join("+")).is_ok());
        // Long chains and nests parse in time linear-ish in their length
        // (a fuzzer found typing that was exponential in the chain).
        let chain = vec!["+a"; 200].concat();
        assert!(parse(&format!("x{chain}")).is_ok());
        let unary = vec!["a + +"; 120].concat();
        assert!(parse(&format!("{unary}a")).is_ok());
        let nested = format!("{}a{}", "topk(1, ".repeat(100), ")".repeat(100));
        assert!(parse(&nested).is_ok());
        let found = "e + +a + + eemplaa + + on+jo+ + on+joxemple + +a + o+ + on+joxem + eemplaa \
                     + + on+jo+ + on+joxempaa + + on+jo+ + on+joxemple + +a + o+ + on+joxemple + \
                     ple + +a + + eemog+ eemplas";
        // It took 17 s to type before.
        assert!(parse(found).is_ok());
    }

    #[test]
    fn durations() {
        use crate::lexer::parse_duration;
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("10s53ms"), Some(10_053));
        assert_eq!(parse_duration("1h"), Some(3_600_000));
        assert_eq!(parse_duration("30s1m"), None);
        assert_eq!(parse_duration("1m1m"), None);
        assert_eq!(parse_duration("5"), None);
    }

    /// Fill modifiers parse in any order after the grouping, print back,
    /// and leave metrics named `fill` alone.
    #[test]
    fn fill_modifiers() {
        for q in [
            "a + fill(0) b",
            "a + on (x) group_left (y) fill_left(1) fill_right(-2) b",
            "a > bool fill(NaN) b",
            "a + fill_right(Inf) b",
        ] {
            // Compared as printed: NaN is never equal to itself.
            let e = parse(q).unwrap().to_string();
            assert_eq!(parse(&e).unwrap().to_string(), e, "{q}");
        }
        match parse("a + fill_left(5) fill_right(7) b").unwrap() {
            Expr::Binary {
                matching: Some(m), ..
            } => {
                assert_eq!((m.fill_left, m.fill_right), (Some(5.0), Some(7.0)));
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            parse("a + fill").unwrap(),
            Expr::Binary { matching: None, .. }
        ));
        for (q, why) in [
            ("a and fill(0) b", "no fill modifier allowed"),
            ("a + fill(0) fill_left(1) b", "fill_left set more than once"),
            ("a + fill(x) b", "expected a number"),
        ] {
            let e = parse(q).unwrap_err().to_string();
            assert!(e.contains(why), "{q}: {e}");
        }
    }

    /// `anchored` and `smoothed` follow a range selector, print back, and
    /// are refused elsewhere.
    #[test]
    fn extended_range_selectors() {
        for q in [
            "rate(x[5m] anchored)",
            "increase(x[5m] offset 1m smoothed)",
            "x[1m] anchored",
            "x offset 1m smoothed",
        ] {
            let e = parse(q).unwrap();
            assert_eq!(parse(&e.to_string()).unwrap(), e, "{q} printed as {e}");
        }
        for (q, why) in [
            ("x anchored", "applies to range selectors"),
            ("x smoothed smoothed", "may not be set together"),
            ("x[5m] anchored smoothed", "may not be set together"),
            (
                "rate(x[5m])[10m:1m] anchored",
                "must follow a range selector",
            ),
        ] {
            let e = parse(q).unwrap_err().to_string();
            assert!(e.contains(why), "{q}: {e}");
        }
    }

    /// Arithmetic wherever a duration is written; after `offset` only a
    /// term, so what follows still applies to the selection.
    #[test]
    fn duration_expressions() {
        let range = |q: &str, ctx| match parse_with(q, ctx).unwrap() {
            Expr::Matrix(_, r) => r,
            Expr::Call { args, .. } => match &args[0] {
                Expr::Matrix(_, r) => *r,
                e => panic!("{q}: {e:?}"),
            },
            e => panic!("{q}: {e:?}"),
        };
        let none = DurationContext::default();
        for (q, ms) in [
            ("x[5m+1m]", 360_000),
            ("x[60*30]", 1_800_000),
            ("x[1h/2]", 1_800_000),
            ("x[1h30m % 1h]", 1_800_000),
            ("x[-5m+35m]", 1_800_000),
            ("x[24m+((1.5*2m)+2m)]", 1_740_000),
            ("rate(x[2m*(10+5)])", 1_800_000),
        ] {
            assert_eq!(range(q, none), ms, "{q}");
        }
        let ctx = DurationContext {
            step_ms: 5_000,
            range_ms: 10_000,
        };
        assert_eq!(range("x[step()+1]", ctx), 6_000);
        assert_eq!(range("x[max_of(min_of(STEP()+1, 1h), 1ms)]", ctx), 6_000);
        assert_eq!(range("x[range()]", ctx), 10_000);
        let offset = |q: &str| match parse_with(q, ctx).unwrap() {
            Expr::Vector(vs) => vs.offset,
            e => panic!("{q}: {e:?}"),
        };
        assert_eq!(offset("x offset (2 * 2)"), 4_000);
        assert_eq!(offset("x offset (-2 ^ 2)"), -4_000);
        assert_eq!(offset("x offset -min_of(step(), 1s)"), -1_000);
        // `offset 100 + 2` adds 2 to the selection.
        assert!(matches!(
            parse("x offset 100 + 2").unwrap(),
            Expr::Binary { .. }
        ));
        for (q, why) in [
            ("x[foo()]", "expected duration"),
            ("x[5m+]", "expected duration"),
            ("x[5m-10m]", "range selector must be positive"),
            ("x[1/0]", "duration out of range"),
        ] {
            let e = parse(q).unwrap_err().to_string();
            assert!(e.contains(why), "{q}: {e}");
        }
        let deep = format!("x[{}1m{}]", "(".repeat(200), ")".repeat(200));
        assert!(
            parse(&deep)
                .unwrap_err()
                .to_string()
                .contains("nested too deeply")
        );
    }

    #[test]
    fn errors_have_positions_and_prometheus_wording() {
        let e = parse("rate(x)").unwrap_err();
        assert_eq!(
            e.message,
            "expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!((e.line, e.col), (1, 1));
        assert!(
            parse("{}")
                .unwrap_err()
                .message
                .contains("at least one non-empty matcher")
        );
        assert!(parse("1 > 2").unwrap_err().message.contains("BOOL"));
        assert!(
            parse("foo(1)")
                .unwrap_err()
                .message
                .contains("unknown function")
        );
        assert_eq!(parse("x +").unwrap_err().col, 4);
    }
}
