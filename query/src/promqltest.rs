//! Runs Prometheus' PromQL test scripts (`load`, `clear`, `eval`; format in
//! `../shared/promql-tests/README.md`) against a fresh temporary database,
//! including the upstream runner's extra runs of every instant eval: with
//! `@` pinned on every selector at several evaluation times, and as a range
//! query around the eval time.

use regex::Regex;
use sextant_histogram::Histogram;
use sextant_storage::{
    Db, Durability, HistogramSample, Labels, MatchOp, Options, Sample, SeriesWrite, WriteBatch,
};

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
    /// `(line, query, why)` of each failure.
    pub failures: Vec<(usize, String, String)>,
}

impl Report {
    /// `N passed, N failed`.
    pub fn counts(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

#[derive(Debug, Clone)]
enum Slot {
    Float(f64),
    /// A native histogram, and whether its literal named its counter
    /// reset hint (only then is the hint compared).
    Histogram(Box<Histogram>, bool),
    Empty,
}

/// Expands `{{A}}`, `{{A}}xN`, `{{A}}+{{B}}xN` and `{{A}}-{{B}}xN`.
fn histogram_series(tok: &str) -> Result<Vec<Slot>, String> {
    // A literal, and whether it names its counter reset hint.
    let literal = |text: &str| -> Result<(Histogram, bool), String> {
        let h = sextant_histogram::parse_notation(text).map_err(|e| e.to_string())?;
        Ok((h, text.contains("counter_reset_hint")))
    };
    let end = tok
        .find("}}")
        .ok_or_else(|| format!("unclosed histogram {tok}"))?
        + 2;
    let (first, rest) = tok.split_at(end);
    if rest.is_empty() {
        let (h, hint) = literal(first)?;
        return Ok(vec![Slot::Histogram(Box::new(h), hint)]);
    }
    let (step, times) = match rest.rsplit_once("}}x") {
        Some((inc, n)) if rest.starts_with(['+', '-']) => (Some(format!("{inc}}}}}")), n),
        _ => (None, rest.strip_prefix('x').unwrap_or(rest)),
    };
    let times: usize = times.parse().map_err(|_| format!("bad repeat in {tok}"))?;
    let (mut h, hint) = literal(first)?;
    let inc = match &step {
        Some(inc) => Some((inc.starts_with('-'), literal(&inc[1..])?.0)),
        None => None,
    };
    let mut out = Vec::with_capacity(times + 1);
    for _ in 0..=times {
        out.push(Slot::Histogram(Box::new(h.clone()), hint));
        if let Some((minus, x)) = &inc {
            if *minus {
                h.sub(x).map_err(|e| e.to_string())?;
            } else {
                h.add(x).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(out)
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
        if tok.starts_with("{{") {
            out.extend(histogram_series(&tok)?);
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
}

struct Runner {
    dir: tempfile::TempDir,
    db: Option<Db>,
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
            let (mut samples, mut histograms) = (Vec::new(), Vec::new());
            for (k, slot) in parse_values(vals)?.into_iter().enumerate() {
                let t = k as i64 * step;
                match slot {
                    Slot::Float(v) => samples.push(Sample::new(t, v)),
                    Slot::Histogram(h, _) => histograms.push(HistogramSample::new(t, *h)),
                    Slot::Empty => {}
                }
            }
            batch.series.push(SeriesWrite {
                labels,
                samples,
                histograms,
                exemplars: Vec::new(),
            });
        }
        if nhcb {
            let derived = custom_bucket_histograms(&batch);
            batch.series.extend(derived);
        }
        let db = self.db.as_ref().ok_or("no database")?;
        db.write(&batch).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn eval(&mut self, cmd: &EvalCmd) {
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

    fn check(&self, cmd: &EvalCmd) -> Result<(), String> {
        let Some(db) = self.db.as_ref() else {
            return Err("no database".into());
        };
        let engine = Engine::new(
            db,
            EngineOptions {
                max_samples: 10_000_000,
                // Prometheus' test engine runs with it, and its files expect it.
                delayed_name_removal: true,
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
                    if let Some(p) = s.points.iter().find(|p| p.t == cmd.at) {
                        return Some(crate::value::Elem::float(s.labels, p.v));
                    }
                    let h = s.histograms.iter().find(|p| p.t == cmd.at)?;
                    Some(crate::value::Elem::histogram(s.labels, h.h.clone()))
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
                    let [slot] = slots.as_slice() else {
                        return Err(format!("expected one value for {labels}"));
                    };
                    let got = &v[pos];
                    if !slot_matches(slot, got.v, got.h.as_deref()) {
                        return Err(format!(
                            "{labels}: expected {}, got {}",
                            show_slot(slot),
                            show_value(got.v, got.h.as_deref())
                        ));
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
                    let expected: Vec<(i64, &Slot)> = slots
                        .iter()
                        .enumerate()
                        .filter(|(_, slot)| !matches!(slot, Slot::Empty))
                        .map(|(i, slot)| (t0 + i as i64 * step, slot))
                        .collect();
                    let got = merged_points(s);
                    let same = expected.len() == got.len()
                        && expected
                            .iter()
                            .zip(&got)
                            .all(|((t, slot), (gt, v, h))| t == gt && slot_matches(slot, *v, *h));
                    if !same {
                        return Err(format!(
                            "{labels}: expected {:?}, got {:?}",
                            expected
                                .iter()
                                .map(|(t, slot)| format!("{t}: {}", show_slot(slot)))
                                .collect::<Vec<_>>(),
                            got.iter()
                                .map(|(t, v, h)| format!("{t}: {}", show_value(*v, *h)))
                                .collect::<Vec<_>>()
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

/// A matrix series' points, floats and histograms, in time order.
fn merged_points(s: &crate::value::RangeSeries) -> Vec<(i64, f64, Option<&Histogram>)> {
    let mut all: Vec<(i64, f64, Option<&Histogram>)> = s
        .points
        .iter()
        .map(|p| (p.t, p.v, None))
        .chain(s.histograms.iter().map(|p| (p.t, 0.0, Some(&*p.h))))
        .collect();
    all.sort_by_key(|p| p.0);
    all
}

/// Whether a result value matches an expected slot (upstream's rules:
/// floats almost equal; histograms field by field, empty buckets left
/// out, the counter reset hint only when the literal gave one).
fn slot_matches(slot: &Slot, v: f64, h: Option<&Histogram>) -> bool {
    match (slot, h) {
        (Slot::Float(x), None) => almost_equal(*x, v),
        (Slot::Histogram(want, hint), Some(got)) => {
            let buckets = |b: &[(i32, f64)]| -> Vec<(i32, f64)> {
                b.iter().copied().filter(|x| x.1 != 0.0).collect()
            };
            let same_buckets = |a: &[(i32, f64)], b: &[(i32, f64)]| {
                let (a, b) = (buckets(a), buckets(b));
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|(x, y)| x.0 == y.0 && almost_equal(x.1, y.1))
            };
            want.schema == got.schema
                && almost_equal(want.count, got.count)
                && almost_equal(want.sum, got.sum)
                && (!want.custom_buckets() || want.custom_values == got.custom_values)
                && want.zero_threshold == got.zero_threshold
                && almost_equal(want.zero_count, got.zero_count)
                && same_buckets(&want.positive, &got.positive)
                && same_buckets(&want.negative, &got.negative)
                && (!hint || want.hint == got.hint)
        }
        _ => false,
    }
}

fn show_slot(slot: &Slot) -> String {
    match slot {
        Slot::Float(x) => x.to_string(),
        Slot::Histogram(h, _) => sextant_histogram::to_notation(h),
        Slot::Empty => "_".into(),
    }
}

fn show_value(v: f64, h: Option<&Histogram>) -> String {
    h.map_or_else(|| v.to_string(), sextant_histogram::to_notation)
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
            // Sextant keeps no source positions: the one the pattern names
            // is taken as given.
            (None, Some(r)) => r.is_match(&format!("{g} ({})", position_in(r.as_str()))),
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

/// What `load_with_nhcb` adds: every classic histogram family
/// (`X_bucket{le}`, `X_count`, `X_sum`) of the batch also as series `X`
/// of custom-bucket native histograms, one per timestamp its buckets have.
fn custom_bucket_histograms(batch: &WriteBatch) -> Vec<SeriesWrite> {
    use std::collections::BTreeMap;
    // Family (labels without `le`, name `X`) → t → (le, cumulative count)s.
    let mut buckets: BTreeMap<Labels, BTreeMap<i64, Vec<(f64, f64)>>> = BTreeMap::new();
    let mut totals: BTreeMap<(Labels, &str), BTreeMap<i64, f64>> = BTreeMap::new();
    let family = |labels: &Labels, base: &str| {
        Labels::new(
            labels
                .iter()
                .filter(|(n, _)| *n != "le")
                .map(|(n, v)| if n == "__name__" { (n, base) } else { (n, v) }),
        )
        .ok()
    };
    for sw in &batch.series {
        let Some(name) = sw.labels.metric_name() else {
            continue;
        };
        if let Some(base) = name.strip_suffix("_bucket")
            && let Some(le) = sw.labels.get("le").and_then(|v| num(v).ok())
            && let Some(f) = family(&sw.labels, base)
        {
            let per_t = buckets.entry(f).or_default();
            for smp in &sw.samples {
                per_t.entry(smp.t).or_default().push((le, smp.v));
            }
            continue;
        }
        for suffix in ["_count", "_sum"] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(f) = family(&sw.labels, base)
            {
                let per_t = totals.entry((f, suffix)).or_default();
                per_t.extend(sw.samples.iter().map(|smp| (smp.t, smp.v)));
            }
        }
    }
    let mut out = Vec::new();
    for (labels, per_t) in buckets {
        let count = totals.get(&(labels.clone(), "_count"));
        let sum = totals.get(&(labels.clone(), "_sum"));
        let mut histograms = Vec::new();
        for (t, mut bs) in per_t {
            // One bucket per bound, however it is spelt (`0.2`, `2e-1`):
            // the first series loaded wins, as in Prometheus' converter.
            bs.sort_by(|a, b| a.0.total_cmp(&b.0));
            bs.dedup_by(|later, first| later.0 == first.0);
            let custom_values: Vec<f64> =
                bs.iter().map(|b| b.0).filter(|le| le.is_finite()).collect();
            let mut prev = 0.0;
            let mut positive = Vec::new();
            for (i, (_, c)) in bs.iter().enumerate() {
                let n = c - prev;
                prev = *c;
                if n != 0.0 {
                    positive.push((i as i32, n));
                }
            }
            let h = Histogram {
                schema: sextant_histogram::CUSTOM_BUCKETS_SCHEMA,
                count: count.and_then(|c| c.get(&t)).copied().unwrap_or(prev),
                sum: sum.and_then(|c| c.get(&t)).copied().unwrap_or(0.0),
                custom_values,
                positive,
                ..Histogram::default()
            };
            histograms.push(HistogramSample::new(t, h));
        }
        out.push(SeriesWrite {
            labels,
            samples: Vec::new(),
            histograms,
            exemplars: Vec::new(),
        });
    }
    out
}

/// The `line:col` an annotation pattern ends with (`\(1:25\)`), or 1:1.
fn position_in(pattern: &str) -> String {
    pattern
        .strip_suffix("\\)")
        .and_then(|p| p.rsplit_once("\\("))
        .map(|(_, pos)| pos.to_string())
        .filter(|pos| pos.split(':').all(|n| n.parse::<u32>().is_ok()))
        .unwrap_or_else(|| "1:1".into())
}
