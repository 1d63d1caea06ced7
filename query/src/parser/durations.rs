//! Duration expressions (Prometheus' `promql-duration-expr`): arithmetic
//! wherever a duration is written. In `[…]` and `[…:…]` a whole
//! expression (`[5m+1m]`, `[1h/2]`, `[step()*2]`); after `offset` a sign
//! and one term (`offset (1h*2)`, `offset -step()`, `offset min_of(range(),
//! 5m)`), so `x offset 1m + 2` still adds 2 to the selection. Numbers are
//! seconds. `step()` and `range()` are the query's step and `end - start`
//! (both 0 for an instant query), known when the query is parsed for its
//! evaluation ([`DurationContext`]).

use crate::error::ParseError;
use crate::lexer::Tok;

use super::Parser;

/// What `step()` and `range()` stand for, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurationContext {
    /// The range query's step (0 for an instant query).
    pub step_ms: i64,
    /// The range query's `end - start` (0 for an instant query).
    pub range_ms: i64,
}

/// Nesting accepted inside one duration expression.
const MAX_DURATION_DEPTH: usize = 64;

impl Parser<'_> {
    /// A duration expression up to `]` or `:`, in ms.
    pub(super) fn duration_expr(&mut self) -> Result<i64, ParseError> {
        let pos = self.pos();
        let secs = self.dur_binary(0, 0)?;
        self.to_ms(secs, pos)
    }

    /// After `offset`: a sign and one term, in ms.
    pub(super) fn duration_term(&mut self) -> Result<i64, ParseError> {
        let pos = self.pos();
        let sign = match self.peek() {
            Tok::Sub => {
                self.next();
                -1.0
            }
            Tok::Add => {
                self.next();
                1.0
            }
            _ => 1.0,
        };
        let secs = sign * self.dur_atom(0)?;
        self.to_ms(secs, pos)
    }

    fn to_ms(&self, secs: f64, pos: usize) -> Result<i64, ParseError> {
        let ms = (secs * 1000.0).round();
        // Anything an i64 of ms holds parses; the engine refuses times it
        // cannot evaluate with its own clear error.
        if !ms.is_finite() || ms.abs() >= 9.2e18 {
            return Err(ParseError::at(
                self.src,
                pos,
                format!("duration out of range: {secs} s"),
            ));
        }
        Ok(ms as i64)
    }

    fn dur_prec(t: &Tok) -> Option<(u8, bool)> {
        // (precedence, right-associative)
        Some(match t {
            Tok::Add | Tok::Sub => (1, false),
            Tok::Mul | Tok::Div | Tok::Mod => (2, false),
            Tok::Pow => (4, true),
            _ => return None,
        })
    }

    /// Precedence climbing over `+ - * / % ^`, seconds.
    fn dur_binary(&mut self, min_prec: u8, depth: usize) -> Result<f64, ParseError> {
        if depth > MAX_DURATION_DEPTH {
            return Err(self.err_here("duration expression nested too deeply"));
        }
        let mut lhs = self.dur_unary(depth)?;
        while let Some((prec, right)) = Self::dur_prec(self.peek()) {
            if prec < min_prec {
                break;
            }
            let op = self.next();
            let rhs = self.dur_binary(if right { prec } else { prec + 1 }, depth + 1)?;
            lhs = match op {
                Tok::Add => lhs + rhs,
                Tok::Sub => lhs - rhs,
                Tok::Mul => lhs * rhs,
                Tok::Div => lhs / rhs,
                Tok::Mod => lhs % rhs,
                _ => lhs.powf(rhs),
            };
        }
        Ok(lhs)
    }

    /// A sign binds tighter than `*` and looser than `^`: `-2^2` is −4.
    fn dur_unary(&mut self, depth: usize) -> Result<f64, ParseError> {
        match self.peek() {
            Tok::Sub | Tok::Add => {
                let neg = *self.peek() == Tok::Sub;
                self.next();
                let v = self.dur_binary(3, depth + 1)?;
                Ok(if neg { -v } else { v })
            }
            _ => self.dur_atom(depth),
        }
    }

    /// A duration, a number of seconds, `( … )`, or `step()`, `range()`,
    /// `min_of(a, b)`, `max_of(a, b)`.
    fn dur_atom(&mut self, depth: usize) -> Result<f64, ParseError> {
        match self.next() {
            Tok::Duration(ms) => Ok(ms as f64 / 1000.0),
            Tok::Number(n) => Ok(n),
            Tok::LParen => {
                let v = self.dur_binary(0, depth + 1)?;
                self.expect(Tok::RParen, "\")\"")?;
                Ok(v)
            }
            Tok::Ident(f) => {
                let name = f.to_ascii_lowercase();
                self.expect(Tok::LParen, "\"(\"")?;
                let v = match name.as_str() {
                    "step" => self.durations.step_ms as f64 / 1000.0,
                    "range" => self.durations.range_ms as f64 / 1000.0,
                    "min_of" | "max_of" => {
                        let a = self.dur_binary(0, depth + 1)?;
                        self.expect(Tok::Comma, "\",\"")?;
                        let b = self.dur_binary(0, depth + 1)?;
                        if name == "min_of" { a.min(b) } else { a.max(b) }
                    }
                    _ => {
                        self.i -= 2;
                        return Err(self.err_here(&format!(
                            "unexpected {}, expected duration (a duration, a number of seconds, \
                             step(), range(), min_of(a, b) or max_of(a, b))",
                            self.describe()
                        )));
                    }
                };
                self.expect(Tok::RParen, "\")\"")?;
                Ok(v)
            }
            _ => {
                self.i -= 1;
                Err(self.err_here(&format!(
                    "unexpected {}, expected duration",
                    self.describe()
                )))
            }
        }
    }
}
