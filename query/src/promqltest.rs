//! Runs Prometheus' PromQL test scripts (`load`, `clear`, `eval`; format in
//! `../shared/promql-tests/README.md`) against a fresh temporary database,
//! including the upstream runner's extra runs of every instant eval: with
//! `@` pinned on every selector at several evaluation times, and as a range
//! query around the eval time.

use regex::Regex;
use sextant_storage::{Db, Durability, Labels, MatchOp, Options, Sample, WriteBatch};

use crate::ast::{At, Expr};
use crate::engine::{Engine, EngineOptions};
use crate::lexer::parse_duration;
use crate::parser::parse;
use crate::value::{STALE_NAN, Value};

/// Counts for one script.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Evals whose every run matched.
    pub passed: usize,
    /// Evals with a mismatch or error.
    pub failed: usize,
    /// Evals that need native histograms.
    pub skipped: usize,
    /// `(line, query, why)` of each failure.
    pub failures: Vec<(usize, String, String)>,
}

impl Report {
    /// `N passed, N failed, N skipped`.
    pub fn counts(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Float(f64),
    Histogram,
    Empty,
}

/// Expands the value notation of load and expectation lines.
fn parse_values(text: &str) -> Result<Vec<Slot>, String> {
    let mut tokens: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        match tokens.last_mut() {
            Some(last) if last.matches("{{").count() > last.matches("}}").count() => {
                last.push(' ');
                last.push_str(w);
            }
            _ => tokens.push(w.to_string()),
        }
    }
    let mut out = Vec::new();
    for tok in tokens {
        if tok.contains("{{") {
            let n = tok.rsplit_once("}}x").map_or(Ok(0), |(_, n)| {
                n.parse::<usize>()
                    .map_err(|_| format!("bad repeat in {tok}"))
            })?;
            out.extend(std::iter::repeat_n(Slot::Histogram, n + 1));
            continue;
        }
        if tok == "_" {
            out.push(Slot::Empty);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad repeat {tok}"))?;
            out.extend(std::iter::repeat_n(Slot::Empty, n));
            continue;
        }
        if tok == "stale" {
            out.push(Slot::Float(f64::from_bits(STALE_NAN)));
            continue;
        }
        let (base, times) = match tok.rsplit_once('x') {
            Some((b, n)) if n.bytes().all(|c| c.is_ascii_digit()) && !n.is_empty() => (
                b,
                Some(
                    n.parse::<usize>()
                        .map_err(|_| format!("bad repeat {tok}"))?,
                ),
            ),
            _ => (tok.as_str(), None),
        };
        let split = base.char_indices().skip(1).find(|&(i, c)| {
            (c == '+' || c == '-') && !matches!(base.as_bytes()[i - 1], b'e' | b'E')
        });
        let (start, inc) = match split {
            Some((i, _)) if times.is_some() => (num(&base[..i])?, num(&base[i..])?),
            _ => (num(base)?, 0.0),
        };
        let mut v = start;
        for _ in 0..=times.unwrap_or(0) {
            out.push(Slot::Float(v));
            v += inc;
        }
    }
    Ok(out)
}

fn num(s: &str) -> Result<f64, String> {
    let s = s.strip_prefix('+').unwrap_or(s);
    match s {
        "Inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad number {s:?}")),
    }
}

/// Splits `metric{a="b c"} 1 2` into descriptor and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let b = line.as_bytes();
    let (mut i, mut in_q, mut depth) = (0, false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' => in_q = !in_q,
            b'{' if !in_q => depth += 1,
            b'}' if !in_q => {
                depth -= 1;
                if depth == 0 {
                    return (&line[..=i], &line[i + 1..]);
                }
            }
            c if c.is_ascii_whitespace() && !in_q && depth == 0 => return (&line[..i], &line[i..]),
            _ => {}
        }
        i += 1;
    }
    (line, "")
}

fn parse_labels(desc: &str) -> Result<Labels, String> {
    if desc.trim() == "{}" {
        return Ok(Labels::empty());
    }
    match parse(desc).map_err(|e| e.to_string())? {
        Expr::Vector(vs) if vs.matchers.iter().all(|m| m.op == MatchOp::Equal) => Labels::new(
            vs.matchers
                .iter()
                .map(|m| (m.name.as_str(), m.value.as_str())),
        )
        .map_err(|e| e.to_string()),
        _ => Err(format!("not a series descriptor: {desc}")),
    }
}

fn time_arg(s: &str) -> Result<i64, String> {
    match s.strip_prefix('-') {
        Some(rest) => parse_duration(rest).map(|d| -d),
        None => parse_duration(s),
    }
    .ok_or_else(|| format!("bad time {s:?}"))
}

fn almost_equal(a: f64, b: f64) -> bool {
    if (a.to_bits() == STALE_NAN) != (b.to_bits() == STALE_NAN) {
        return false;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let (abs_sum, diff) = (a.abs() + b.abs(), (a - b).abs());
    let min_normal = f64::MIN_POSITIVE;
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < 1e-6 * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < 1e-6
}

enum Expect {
    Fail(Option<String>, Option<Regex>),
    Scalar(f64),
    Str(String),
    Series(Vec<(Labels, Vec<Slot>)>),
}

struct EvalCmd {
    line: usize,
    query: String,
    range: Option<(i64, i64, i64)>,
    at: i64,
    expect: Expect,
    ordered: bool,
    range_vector: Option<(i64, i64, i64)>,
    warn: AnnotationExpect,
    info: AnnotationExpect,
    needs_histograms: bool,
}

struct Runner {
    dir: tempfile::TempDir,
    db: Option<Db>,
    /// Series of the current block that hold native histogram samples.
    histogram_series: Vec<Labels>,
    report: Report,
}

fn open_db(dir: &std::path::Path) -> Result<Db, String> {
    let opts = Options {
        ooo_window_ms: i64::MAX,
        durability: Durability::Never,
        background: false,
        ..Options::default()
    };
    Db::open(dir, opts).map_err(|e| e.to_string())
}

impl Runner {
    fn clear(&mut self) -> Result<(), String> {
        self.db = None;
        self.dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        self.db = Some(open_db(self.dir.path())?);
        self.histogram_series.clear();
        Ok(())
    }

    /// A command that cannot run counts as one failure; the script goes
    /// on with the next command.
    fn refuse(&mut self, no: usize, line: &str, why: String) {
        self.report.failed += 1;
        self.report.failures.push((no, line.to_string(), why));
    }

    fn load(&mut self, step: i64, lines: &[(usize, &str)], nhcb: bool) -> Result<(), String> {
        let mut batch = WriteBatch::default();
        for (_, line) in lines {
            let (desc, vals) = split_series(line.trim());
            let labels = parse_labels(desc)?;
            let mut samples = Vec::new();
            let mut histograms = false;
            for (k, slot) in parse_values(vals)?.into_iter().enumerate() {
                match slot {
                    Slot::Float(v) => samples.push(Sample::new(k as i64 * step, v)),
                    Slot::Histogram => histograms = true,
                    Slot::Empty => {}
                }
            }
            if histograms {
                self.histogram_series.push(labels.clone());
            }
            if nhcb && let Some(base) = labels.metric_name().and_then(|n| n.strip_suffix("_bucket"))
            {
                // load_with_nhcb derives series `base` (without `le`) holding histograms.
                let derived = Labels::new(
                    labels
                        .iter()
                        .filter(|(n, _)| *n != "le")
                        .map(|(n, v)| if n == "__name__" { (n, base) } else { (n, v) }),
                );
                self.histogram_series.extend(derived.ok());
            }
            batch.add(labels, samples);
        }
        let db = self.db.as_ref().ok_or("no database")?;
        db.write(&batch).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn eval(&mut self, cmd: &EvalCmd) {
        let skip = cmd.needs_histograms
            || uses_native_histogram_features(&cmd.query)
            || self.selects_histograms(&cmd.query);
        if skip {
            self.report.skipped += 1;
            return;
        }
        match self.check(cmd) {
            Ok(()) => self.report.passed += 1,
            Err(why) => {
                self.report.failed += 1;
                self.report
                    .failures
                    .push((cmd.line, cmd.query.clone(), why));
            }
        }
    }

    /// Whether any selector of `query` matches a series holding native
    /// histograms: such evals need native histogram support (skipped).
    fn selects_histograms(&self, query: &str) -> bool {
        let Ok(expr) = parse(query) else { return false };
        expr.selectors().iter().any(|vs| {
            self.histogram_series.iter().any(|l| {
                vs.matchers
                    .iter()
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            })
        })
    }

    fn check(&self, cmd: &EvalCmd) -> Result<(), String> {
        let Some(db) = self.db.as_ref() else {
            return Err("no database".into());
        };
        let engine = Engine::new(
            db,
            EngineOptions {
                max_samples: 10_000_000,
                ..EngineOptions::default()
            },
        );
        let run = |expr: &Expr, t: i64| -> Result<Value, String> {
            match cmd.range {
                Some((s, e, st)) => engine.range(expr, s, e, st),
                None => engine.instant(expr, t),
            }
            .map_err(|e| e.to_string())
        };
        let durations = match cmd.range {
            Some((s, e, st)) => crate::DurationContext {
                step_ms: st,
                range_ms: e - s,
            },
            None => crate::DurationContext::default(),
        };
        let parsed = crate::parse_with(&cmd.query, durations);
        if let Expect::Fail(msg, re) = &cmd.expect {
            let err = match parsed {
                Err(e) => e.to_string(),
                Ok(expr) => match run(&expr, cmd.at) {
                    Err(e) => e,
                    Ok(v) => return Err(format!("expected an error, got {v:?}")),
                },
            };
            if let Some(m) = msg
                && &err != m
            {
                return Err(format!("error {err:?} differs from expected {m:?}"));
            }
            if let Some(re) = re
                && !re.is_match(&err)
            {
                return Err(format!("error {err:?} does not match {re}"));
            }
            return Ok(());
        }
        let expr = parsed.map_err(|e| e.to_string())?;
        let got = match cmd.range {
            Some(_) => run(&expr, cmd.at)?,
            None => {
                let (v, annotations) = engine
                    .instant_annotated(&expr, cmd.at)
                    .map_err(|e| e.to_string())?;
                let (infos, warnings): (Vec<String>, Vec<String>) = annotations
                    .into_iter()
                    .partition(|a| a.starts_with(crate::INFO_PREFIX));
                cmd.warn
                    .check(&warnings)
                    .map_err(|e| format!("warnings: {e}"))?;
                cmd.info.check(&infos).map_err(|e| format!("infos: {e}"))?;
                v
            }
        };
        self.compare(cmd, &got, cmd.range.is_some())
            .map_err(|e| format!("as written: {e}"))?;
        if cmd.range.is_some() {
            return Ok(());
        }
        let q = &cmd.query;
        let calls = |names: &[&str]| names.iter().any(|n| q.contains(&format!("{n}(")));
        if !calls(&[
            "time",
            "timestamp",
            "predict_linear",
            "hour",
            "minute",
            "month",
            "year",
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "days_in_month",
            "start",
            "end",
            "range",
            "step",
        ]) {
            let mut pinned = expr.clone();
            pin_at(&mut pinned, cmd.at);
            let times = if cmd.at == 0 {
                vec![-1000, 0, 1000]
            } else {
                vec![-10 * cmd.at, 0, cmd.at / 5, cmd.at, 10 * cmd.at]
            };
            for t in times {
                let v = engine
                    .instant(&pinned, t)
                    .map_err(|e| format!("with @ at {t}ms: {e}"))?;
                self.compare(cmd, &v, false)
                    .map_err(|e| format!("with @ pinned, evaluated at {t}ms: {e}"))?;
            }
        }
        let range_ok = !cmd.ordered
            && cmd.range_vector.is_none()
            && !matches!(cmd.expect, Expect::Str(_))
            && !calls(&["start", "end", "range", "step"]);
        if range_ok {
            let v = engine
                .range(&expr, cmd.at - 60_000, cmd.at + 60_000, 60_000)
                .map_err(|e| format!("as range query: {e}"))?;
            let Value::Matrix(m) = v else {
                return Err("range query returned no matrix".into());
            };
            let mid: Vec<crate::value::Elem> = m
                .into_iter()
                .filter_map(|s| {
                    s.points
                        .iter()
                        .find(|p| p.t == cmd.at)
                        .map(|p| crate::value::Elem {
                            labels: s.labels,
                            v: p.v,
                        })
                })
                .collect();
            let as_value = match (&cmd.expect, mid.as_slice()) {
                (Expect::Scalar(_), [one]) if one.labels.is_empty() => Value::Scalar(one.v),
                _ => Value::Vector(mid),
            };
            self.compare(cmd, &as_value, false)
                .map_err(|e| format!("as range query (middle step): {e}"))?;
        }
        Ok(())
    }

    fn compare(&self, cmd: &EvalCmd, got: &Value, range: bool) -> Result<(), String> {
        match (&cmd.expect, got) {
            (Expect::Scalar(want), Value::Scalar(v)) => {
                if almost_equal(*want, *v) {
                    Ok(())
                } else {
                    Err(format!("expected scalar {want}, got {v}"))
                }
            }
            (Expect::Str(want), Value::Str(v)) => {
                if want == v {
                    Ok(())
                } else {
                    Err(format!("expected string {want:?}, got {v:?}"))
                }
            }
            (Expect::Series(want), Value::Vector(v)) if !range && cmd.range_vector.is_none() => {
                if want.len() != v.len() {
                    return Err(format!(
                        "expected {} series, got {}: {:?}",
                        want.len(),
                        v.len(),
                        v.iter()
                            .map(|e| (e.labels.to_string(), e.v))
                            .collect::<Vec<_>>()
                    ));
                }
                for (i, (labels, slots)) in want.iter().enumerate() {
                    let Some(pos) = v.iter().position(|e| &e.labels == labels) else {
                        return Err(format!(
                            "series {labels} missing from {:?}",
                            v.iter().map(|e| e.labels.to_string()).collect::<Vec<_>>()
                        ));
                    };
                    if cmd.ordered && pos != i {
                        return Err(format!("series {labels} at position {pos}, expected {i}"));
                    }
                    let want_v = match slots.as_slice() {
                        [Slot::Float(x)] => *x,
                        _ => return Err(format!("expected one value for {labels}")),
                    };
                    if !almost_equal(want_v, v[pos].v) {
                        return Err(format!("{labels}: expected {want_v}, got {}", v[pos].v));
                    }
                }
                Ok(())
            }
            (Expect::Series(want), Value::Matrix(m)) => {
                let (t0, step) = match (cmd.range, cmd.range_vector) {
                    (Some((s, _, st)), _) | (None, Some((s, _, st))) => (s, st),
                    _ => return Err("got a range vector from an instant query".into()),
                };
                if want.len() != m.len() {
                    return Err(format!(
                        "expected {} series, got {}: {:?}",
                        want.len(),
                        m.len(),
                        m.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>()
                    ));
                }
                for (labels, slots) in want {
                    let Some(s) = m.iter().find(|s| &s.labels == labels) else {
                        return Err(format!("series {labels} missing"));
                    };
                    let expected: Vec<(i64, f64)> = slots
                        .iter()
                        .enumerate()
                        .filter_map(|(i, slot)| match slot {
                            Slot::Float(x) => Some((t0 + i as i64 * step, *x)),
                            _ => None,
                        })
                        .collect();
                    if expected.len() != s.points.len()
                        || !expected
                            .iter()
                            .zip(&s.points)
                            .all(|((t, x), p)| *t == p.t && almost_equal(*x, p.v))
                    {
                        return Err(format!(
                            "{labels}: expected {expected:?}, got {:?}",
                            s.points.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>()
                        ));
                    }
                }
                Ok(())
            }
            (Expect::Series(want), Value::Vector(v)) if want.is_empty() && v.is_empty() => Ok(()),
            (Expect::Series(want), Value::Scalar(_)) if want.is_empty() => {
                Err("expected an empty vector, got a scalar".into())
            }
            (_, other) => Err(format!(
                "result type does not match the expectation: got {other:?}"
            )),
        }
    }
}

/// Gives every selector and subquery without `@` an `@ t`; selectors inside
/// a subquery are left alone (the subquery's `@` already fixes them).
fn pin_at(e: &mut Expr, t: i64) {
    match e {
        Expr::Vector(vs) | Expr::Matrix(vs, _) => {
            vs.at.get_or_insert(At::Time(t));
        }
        Expr::Subquery { at, .. } => {
            at.get_or_insert(At::Time(t));
        }
        e => e.children_mut().into_iter().for_each(|c| pin_at(c, t)),
    }
}

impl Report {
    /// Adds another script's counts (failures included).
    pub fn merge(&mut self, other: Report) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.failures.extend(other.failures);
    }
}

/// Reads and runs one script file.
pub fn run_file(path: &std::path::Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    run_script(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs one script.
pub fn run_script(text: &str) -> Result<Report, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = open_db(dir.path())?;
    let mut r = Runner {
        dir,
        db: Some(db),
        histogram_series: Vec::new(),
        report: Report::default(),
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .collect();
    let mut i = 0;
    while i < lines.len() {
        let (no, line) = lines[i];
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if first == "clear" {
            // `clear` owns no lines: the next line is a command of its own.
            r.clear()?;
            continue;
        }
        let mut block = Vec::new();
        while i < lines.len() && !lines[i].1.is_empty() && !lines[i].1.starts_with('#') {
            block.push(lines[i]);
            i += 1;
        }
        if first.starts_with("load") {
            let Some(step) = line.split_whitespace().nth(1).and_then(parse_duration) else {
                r.refuse(no, line, "bad load step".into());
                continue;
            };
            if let Err(e) = r.load(step, &block, first == "load_with_nhcb") {
                r.refuse(no, line, format!("cannot load: {e}"));
            }
        } else if first.starts_with("eval") {
            match parse_eval(no, line, &block) {
                Ok(cmd) => r.eval(&cmd),
                Err(e) => r.refuse(no, line, format!("cannot read the eval: {e}")),
            }
        } else {
            r.refuse(no, line, "unknown command".into());
        }
    }
    Ok(r.report)
}

fn parse_eval(no: usize, header: &str, block: &[(usize, &str)]) -> Result<EvalCmd, String> {
    let (word, rest) = header.split_once(char::is_whitespace).ok_or("empty eval")?;
    let mut fail = word == "eval_fail";
    let ordered = word == "eval_ordered";
    let mut warn = AnnotationExpect {
        any: word == "eval_warn",
        ..Default::default()
    };
    let mut info = AnnotationExpect {
        any: word == "eval_info",
        ..Default::default()
    };
    let rest = rest.trim();
    let (range, at, query) = if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, q) = r
            .trim()
            .split_once(char::is_whitespace)
            .ok_or("missing query")?;
        (None, time_arg(t)?, q.trim().to_string())
    } else if let Some(r) = rest.strip_prefix("range from ") {
        let parts: Vec<&str> = r.splitn(6, char::is_whitespace).collect();
        if parts.len() < 6 || parts[1] != "to" || parts[3] != "step" {
            return Err("bad range header".into());
        }
        let (s, e, st) = (
            time_arg(parts[0])?,
            time_arg(parts[2])?,
            time_arg(parts[4])?,
        );
        (Some((s, e, st)), s, parts[5].trim().to_string())
    } else {
        return Err(format!("bad eval header {header:?}"));
    };
    let mut msg = None;
    let mut re = None;
    let mut series = Vec::new();
    let mut scalar = None;
    let mut string = None;
    let mut ordered = ordered;
    let mut range_vector = None;
    let mut needs_histograms = false;
    for (_, l) in block {
        if let Some(e) = l.strip_prefix("expect ") {
            let e = e.trim();
            if let Some(x) = e.strip_prefix("fail") {
                fail = true;
                let x = x.trim();
                if let Some(m) = x.strip_prefix("msg:") {
                    msg = Some(m.trim().to_string());
                } else if let Some(r) = x.strip_prefix("regex:") {
                    re = Some(Regex::new(r.trim()).map_err(|e| e.to_string())?);
                }
            } else if let Some(x) = e.strip_prefix("no_warn") {
                let _ = x;
                warn.none = true;
            } else if let Some(x) = e.strip_prefix("no_info") {
                let _ = x;
                info.none = true;
            } else if let Some(x) = e.strip_prefix("warn") {
                warn.add(x)?;
            } else if let Some(x) = e.strip_prefix("info") {
                info.add(x)?;
            } else if e == "ordered" {
                ordered = true;
            } else if let Some(s) = e.strip_prefix("string ") {
                let s = s.trim();
                string = Some(match parse(s) {
                    Ok(Expr::Str(v)) => v,
                    _ => s.trim_matches('"').to_string(),
                });
            } else if let Some(r) = e.strip_prefix("range vector from ") {
                let p: Vec<&str> = r.split_whitespace().collect();
                if p.len() == 5 {
                    range_vector = Some((time_arg(p[0])?, time_arg(p[2])?, time_arg(p[4])?));
                }
            }
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message ") {
            msg = Some(m.trim().to_string());
            continue;
        }
        if let Some(r) = l.strip_prefix("expected_fail_regexp ") {
            re = Some(Regex::new(r.trim()).map_err(|e| e.to_string())?);
            continue;
        }
        if l.contains("{{") {
            needs_histograms = true;
            continue;
        }
        if let Ok(v) = num(l) {
            scalar = Some(v);
            continue;
        }
        let (desc, vals) = split_series(l);
        series.push((parse_labels(desc)?, parse_values(vals)?));
    }
    let expect = if fail {
        Expect::Fail(msg, re)
    } else if let Some(s) = string {
        Expect::Str(s)
    } else if let Some(v) = scalar {
        Expect::Scalar(v)
    } else {
        Expect::Series(series)
    };
    Ok(EvalCmd {
        line: no,
        query,
        range,
        at,
        expect,
        ordered,
        range_vector,
        warn,
        info,
        needs_histograms,
    })
}

/// `expect warn`/`expect info` lines of one eval, and how upstream checks
/// them: with any such line, every annotation of that kind must match a
/// line and every line an annotation; `expect no_*` forbids any.
#[derive(Default)]
struct AnnotationExpect {
    any: bool,
    none: bool,
    patterns: Vec<(Option<String>, Option<Regex>)>,
}

impl AnnotationExpect {
    fn add(&mut self, rest: &str) -> Result<(), String> {
        self.any = true;
        let rest = rest.trim();
        if let Some(m) = rest.strip_prefix("msg:") {
            self.patterns.push((Some(m.trim().to_string()), None));
        } else if let Some(r) = rest.strip_prefix("regex:") {
            self.patterns
                .push((None, Some(Regex::new(r.trim()).map_err(|e| e.to_string())?)));
        }
        Ok(())
    }

    /// `got` are messages without their source position; a pattern's
    /// position suffix is not compared (the tree keeps no positions yet).
    fn check(&self, got: &[String]) -> Result<(), String> {
        if self.none && !got.is_empty() {
            return Err(format!("expected none, got {got:?}"));
        }
        if !self.any {
            return Ok(());
        }
        if got.is_empty() {
            return Err("expected at least one, got none".into());
        }
        let strip = |s: &str| {
            s.rsplit_once(" (")
                .map_or(s.to_string(), |(m, _)| m.to_string())
        };
        let matches = |g: &str, (msg, re): &(Option<String>, Option<Regex>)| match (msg, re) {
            (Some(m), _) => strip(m) == g,
            (None, Some(r)) => r.is_match(&format!("{g} (1:1)")),
            (None, None) => true,
        };
        if !self.patterns.is_empty() {
            if let Some(g) = got
                .iter()
                .find(|g| !self.patterns.iter().any(|p| matches(g, p)))
            {
                return Err(format!("unexpected {g:?}"));
            }
            if self
                .patterns
                .iter()
                .any(|p| !got.iter().any(|g| matches(g, p)))
            {
                return Err(format!("not all expected ones occurred: {got:?}"));
            }
        }
        Ok(())
    }
}

/// Functions and operators that exist only for native histograms.
fn uses_native_histogram_features(query: &str) -> bool {
    const FUNCS: [&str; 6] = [
        "histogram_count(",
        "histogram_sum(",
        "histogram_avg(",
        "histogram_stddev(",
        "histogram_stdvar(",
        "histogram_quantiles(",
    ];
    FUNCS.iter().any(|f| query.contains(f)) || query.contains("</") || query.contains(">/")
}
