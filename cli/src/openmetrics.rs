//! A parser for the OpenMetrics / Prometheus text exposition format, as
//! `promtool tsdb create-blocks-from openmetrics` accepts it: one sample
//! per line, `name{label="value",...} value [timestamp-seconds] [# exemplar]`,
//! comments and `# EOF` ignored.

use sextant_storage::{Exemplar, Labels};

/// One sample line.
#[derive(Debug, PartialEq)]
pub struct Line<'a> {
    /// The series text (`name{...}`) exactly as written, so consecutive
    /// lines of one series can share one parsed label set.
    pub series: &'a str,
    /// The value.
    pub value: f64,
    /// Timestamp in ms, if given.
    pub ts_ms: Option<i64>,
    /// An exemplar, if given.
    pub exemplar: Option<Exemplar>,
}

/// Parses a line; `Ok(None)` for blank lines and comments.
pub fn parse_line(line: &str) -> Result<Option<Line<'_>>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = series_end(line)?;
    let series = &line[..end];
    let (sample, exemplar) = match line[end..].split_once(" # ") {
        Some((s, e)) => (s, Some(parse_exemplar(e.trim())?)),
        None => (&line[end..], None),
    };
    let mut fields = sample.split_ascii_whitespace();
    let value = parse_value(fields.next().ok_or("missing value")?)?;
    let ts_ms = fields.next().map(parse_timestamp).transpose()?;
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(Some(Line {
        series,
        value,
        ts_ms,
        exemplar,
    }))
}

/// Parses a series text (`name{a="b"}` or `{__name__="x"}`) into labels.
pub fn parse_series(series: &str) -> Result<Labels, String> {
    let name_end = series.find('{').unwrap_or(series.len());
    let name = &series[..name_end];
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        check_metric_name(name)?;
        pairs.push(("__name__".into(), name.into()));
    }
    if name_end < series.len() {
        let body = series[name_end + 1..]
            .strip_suffix('}')
            .ok_or("unterminated label set")?;
        pairs.extend(parse_labels(body)?);
    }
    if !pairs.iter().any(|(n, _)| n == "__name__") {
        return Err("series has no metric name".into());
    }
    Labels::new(pairs).map_err(|e| e.to_string())
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let ok = name.bytes().enumerate().all(|(i, b)| {
        b == b'_' || b == b':' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

/// Byte index where the series text ends (after `}` or the bare name).
fn series_end(line: &str) -> Result<usize, String> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] != b'{' && !b[i].is_ascii_whitespace() {
        i += 1;
    }
    if i == b.len() || b[i] != b'{' {
        return Ok(i);
    }
    let mut in_quotes = false;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'}' if !in_quotes => return Ok(i + 1),
            _ => {}
        }
        i += 1;
    }
    Err("unterminated label set".into())
}

fn parse_labels(body: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = rest[..eq].trim();
        let name = name.trim_matches('"');
        if name.is_empty() {
            return Err("empty label name".into());
        }
        let after = rest[eq + 1..].trim_start();
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| format!("value of label {name:?} is not quoted"))?;
        let (value, used) = unescape(after)?;
        out.push((name.to_string(), value));
        rest = after[used..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

/// Unescapes a quoted value up to its closing quote; returns the value and
/// the bytes consumed (closing quote included).
fn unescape(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("invalid value {s:?}")),
    }
}

/// Seconds with an optional fraction, to ms, exactly when the text has at
/// most millisecond precision.
fn parse_timestamp(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid timestamp {s:?}");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !int.is_empty()
        && int
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        let secs: i64 = int.parse().map_err(|_| bad())?;
        let mut ms = 0i64;
        for (i, d) in frac.bytes().take(3).enumerate() {
            ms += i64::from(d - b'0') * 10i64.pow(2 - i as u32);
        }
        let ms = if int.starts_with('-') { -ms } else { ms };
        return secs
            .checked_mul(1000)
            .and_then(|x| x.checked_add(ms))
            .ok_or_else(bad);
    }
    let f: f64 = s.parse().map_err(|_| bad())?;
    let ms = (f * 1000.0).round();
    if !ms.is_finite() || ms.abs() > 9.2e18 {
        return Err(bad());
    }
    Ok(ms as i64)
}

fn parse_exemplar(s: &str) -> Result<Exemplar, String> {
    if !s.starts_with('{') {
        return Err("exemplar must start with '{'".into());
    }
    let end = series_end(s)?;
    let labels = parse_labels(&s[1..end - 1])?;
    let mut fields = s[end..].split_ascii_whitespace();
    let value = parse_value(fields.next().ok_or("exemplar without value")?)?;
    let t = fields.next().map(parse_timestamp).transpose()?.unwrap_or(0);
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut rest = Vec::new();
    for (n, v) in labels {
        match n.as_str() {
            "trace_id" | "traceID" => hex_into(&v, &mut trace_id)?,
            "span_id" | "spanID" => hex_into(&v, &mut span_id)?,
            _ => rest.push((n, v)),
        }
    }
    Ok(Exemplar {
        t,
        value,
        trace_id,
        span_id,
        labels: Labels::new(rest).map_err(|e| e.to_string())?,
    })
}

fn hex_into(s: &str, out: &mut [u8]) -> Result<(), String> {
    if s.len() != out.len() * 2 {
        return Err(format!("id {s:?} must be {} hex digits", out.len() * 2));
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("invalid hex id {s:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lines() {
        let l = parse_line(r#"http_requests_total{code="200",path="/a b}"} 1027 1704067200.015"#)
            .unwrap()
            .unwrap();
        assert_eq!(l.series, r#"http_requests_total{code="200",path="/a b}"}"#);
        assert_eq!((l.value, l.ts_ms), (1027.0, Some(1_704_067_200_015)));
        let labels = parse_series(l.series).unwrap();
        assert_eq!(labels.get("path"), Some("/a b}"));
        assert_eq!(labels.metric_name(), Some("http_requests_total"));
        let l = parse_line("up 1").unwrap().unwrap();
        assert_eq!((l.series, l.ts_ms), ("up", None));
        assert!(parse_line("+Inf").is_err());
        assert!(parse_line("# TYPE x counter").unwrap().is_none());
        assert!(parse_line("# EOF").unwrap().is_none());
        assert!(parse_line("x -Inf 5").unwrap().unwrap().value.is_infinite());
        assert!(parse_line("x NaN 5").unwrap().unwrap().value.is_nan());
        assert_eq!(parse_line("x 1 -1.5").unwrap().unwrap().ts_ms, Some(-1500));
    }

    #[test]
    fn escapes_and_errors() {
        let l = parse_series(r#"m{a="x\"y\\z\n"}"#).unwrap();
        assert_eq!(l.get("a"), Some("x\"y\\z\n"));
        assert!(parse_series(r#"m{a="x}"#).is_err());
        assert!(parse_series("9bad").is_err());
        assert!(parse_series(r#"m{a=x}"#).is_err());
        assert!(parse_series(r#"m{a="1",a="2"}"#).is_err());
        assert!(parse_line("m{a=\"1\"} notanumber").is_err());
        assert!(parse_line("m 1 2 3").is_err());
    }

    #[test]
    fn exemplars() {
        let l = parse_line(r#"req_bucket{le="0.5"} 7 1700000000.000 # {trace_id="0102030405060708090a0b0c0d0e0f10",span_id="1112131415161718",user="u"} 0.31 1700000000.5"#)
            .unwrap()
            .unwrap();
        let e = l.exemplar.unwrap();
        assert_eq!(e.trace_id[0], 1);
        assert_eq!(e.span_id[7], 0x18);
        assert_eq!((e.value, e.t), (0.31, 1_700_000_000_500));
        assert_eq!(e.labels.get("user"), Some("u"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            if let Ok(Some(l)) = parse_line(&s) {
                let _ = parse_series(l.series);
            }
        }
    }
}
