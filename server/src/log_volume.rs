//! `/api/v1/sextant/logs/volume`: how many lines a log search selects in
//! each step of a range, by level. The Logs page draws it above the lines,
//! so when a kind of line began shows before any line is read, for the
//! same selector and text query the lines come from (the query language's
//! `count_over_time` has no text query).

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::response::Response;
use serde_json::{Value as Json, json};
use sextant_storage::{LogRecord, level_of};

use super::body::Params;
use super::error::ApiResult;
use super::prom_api::{json, parse_duration, parse_time, required};
use super::prom_json::success;
use super::sextant_api::log_search;
use super::state::State;

/// Lines counted at most. A volume is counted from the lines themselves,
/// so its cost grows with them; past this the newest are counted and the
/// answer says from when.
const MAX_LINES: usize = 100_000;

/// `GET|POST /api/v1/sextant/logs/volume?match[]&q&start&end&step`: the
/// lines of `/api/v1/sextant/logs`' search counted per step and level:
/// `{"step", "from", "lines", "complete", "result": [{"level", "values":
/// [[t, "n"], ...]}]}`, most severe level first, a step's count at its
/// start `t` (seconds). Steps older than `from` are left out when more than
/// [`MAX_LINES`] lines match.
pub async fn log_volume(AxState(st): AxState<Arc<State>>, p: Params) -> ApiResult<Response> {
    let mut search = log_search(&p)?;
    // A range and step as a range query takes them, with its limits.
    let start = parse_time("start", required(&p, "start")?)?;
    let end = parse_time("end", required(&p, "end")?)?;
    let step = parse_duration("step", required(&p, "step")?)?;
    sextant_query::check_range(start, end, step)?;
    search.limit = MAX_LINES + 1;
    let body = st
        .query(move |st| {
            let rows = st.db.search_logs(&search)?;
            let v = Volume::count(&rows, start, end, step);
            let warnings = match v.complete {
                true => Vec::new(),
                false => vec![format!(
                    "more than {MAX_LINES} lines match: the newest {MAX_LINES} are counted, \
                     from {:.3}",
                    v.from as f64 / 1000.0
                )],
            };
            Ok(success(&v.to_json(step).to_string(), &warnings))
        })
        .await?;
    Ok(json(body))
}

/// Lines per step and level.
struct Volume {
    /// Levels, most severe first, each with a count per step.
    levels: Vec<(String, Vec<u64>)>,
    /// The first step counted whole (ms); past the range's end when none
    /// was.
    from: i64,
    lines: usize,
    complete: bool,
}

impl Volume {
    /// Counts `rows` (a search's answer, newest first, at most
    /// [`MAX_LINES`] + 1) in the steps of `[start, end]` (ms). When the
    /// answer was cut, the steps up to the oldest line counted are left
    /// out: lines of that moment may be among those not read.
    fn count(rows: &[LogRecord], start: i64, end: i64, step: i64) -> Volume {
        let complete = rows.len() <= MAX_LINES;
        let rows = &rows[..rows.len().min(MAX_LINES)];
        // In i128: the range may span more than an i64 (any two times the
        // API takes), in at most `MAX_POINTS` steps.
        let steps = ((i128::from(end) - i128::from(start)) / i128::from(step) + 1) as usize;
        let first = if complete {
            0
        } else {
            rows.last().map_or(steps, |r| {
                ((r.time_ms() - start).div_euclid(step) + 1).clamp(0, steps as i64) as usize
            })
        };
        let mut levels: Vec<(String, Vec<u64>)> = Vec::new();
        let mut lines = 0;
        for r in rows {
            let k = (r.time_ms() - start).div_euclid(step);
            if k < first as i64 || k >= steps as i64 {
                continue;
            }
            let level = level_of(r.severity, &r.severity_text);
            let i = match levels.iter().position(|(l, _)| *l == level) {
                Some(i) => i,
                None => {
                    levels.push((level, vec![0; steps]));
                    levels.len() - 1
                }
            };
            levels[i].1[k as usize] += 1;
            lines += 1;
        }
        levels.sort_by_key(|(l, _)| (severity_rank(l), l.clone()));
        for (_, counts) in &mut levels {
            counts.drain(..first);
        }
        Volume {
            levels,
            from: start.saturating_add((first as i64).saturating_mul(step)),
            lines,
            complete,
        }
    }

    fn to_json(&self, step: i64) -> Json {
        // Each step's start, stepped to (never past the range's end).
        let times = || std::iter::successors(Some(self.from), |t| t.checked_add(step));
        let result: Vec<Json> = self
            .levels
            .iter()
            .map(|(level, counts)| {
                let values: Vec<Json> = (counts.iter().zip(times()))
                    .map(|(n, t)| json!([t as f64 / 1000.0, n.to_string()]))
                    .collect();
                json!({"level": level, "values": values})
            })
            .collect();
        json!({
            "step": step as f64 / 1000.0,
            "from": self.from as f64 / 1000.0,
            "lines": self.lines,
            "complete": self.complete,
            "result": result,
        })
    }
}

/// Most severe first; levels outside OpenTelemetry's names last.
fn severity_rank(level: &str) -> usize {
    ["fatal", "error", "warn", "info", "debug", "trace"]
        .iter()
        .position(|l| *l == level)
        .unwrap_or(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: i64, severity: u8) -> LogRecord {
        LogRecord {
            time_ns: ms * 1_000_000,
            severity,
            ..Default::default()
        }
    }

    #[test]
    fn lines_are_counted_by_step_and_level_most_severe_first() {
        // Newest first, as a search answers; steps of 10 ms over [100, 130].
        let rows = [
            line(130, 9),
            line(125, 17),
            line(119, 9),
            line(110, 9),
            line(109, 17),
            line(100, 9),
        ];
        let v = Volume::count(&rows, 100, 130, 10);
        assert!(v.complete);
        assert_eq!(v.from, 100);
        assert_eq!(v.lines, 6);
        let want = [
            ("error".to_string(), vec![1, 0, 1, 0]),
            ("info".to_string(), vec![1, 2, 0, 1]),
        ];
        assert_eq!(v.levels, want);
        let j = v.to_json(10);
        assert_eq!(j["result"][0]["level"], "error");
        assert_eq!(j["result"][1]["values"][1], json!([0.11, "2"]));
    }

    #[test]
    fn a_cut_answer_leaves_out_the_steps_it_may_not_have_read_whole() {
        let mut rows: Vec<LogRecord> = (0..=MAX_LINES as i64)
            .map(|i| line(1_000_000 - i, 9))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.time_ns));
        // The oldest line counted is at 1_000_000 - (MAX_LINES - 1): its
        // step of 1000 ms and those before it are not counted.
        let v = Volume::count(&rows, 0, 1_000_000, 1000);
        assert!(!v.complete);
        let oldest = 1_000_000 - (MAX_LINES as i64 - 1);
        let from = (oldest / 1000 + 1) * 1000;
        assert_eq!(v.from, from);
        assert_eq!(v.levels.len(), 1);
        let counts = &v.levels[0].1;
        assert_eq!(counts.len() as i64, (1_000_000 - from) / 1000 + 1);
        assert!(counts[..counts.len() - 1].iter().all(|&n| n == 1000));
        assert_eq!(counts.last(), Some(&1), "the line at the range's end");
        assert_eq!(v.lines as i64, 1_000_000 - from + 1);
    }

    #[test]
    fn a_range_wider_than_an_i64_is_counted_in_its_steps() {
        let (start, end) = (-9_000_000_000_000_000_000, 9_000_000_000_000_000_000);
        let step = 2_000_000_000_000_000;
        let v = Volume::count(&[line(0, 17)], start, end, step);
        assert_eq!(v.lines, 1);
        assert_eq!(v.levels[0].1.len(), 9001);
        assert_eq!(v.levels[0].1[4500], 1);
        assert_eq!(
            v.to_json(step)["result"][0]["values"]
                .as_array()
                .unwrap()
                .len(),
            9001
        );
    }

    #[test]
    fn lines_outside_the_range_are_not_counted() {
        let v = Volume::count(&[line(99, 9), line(141, 9)], 100, 130, 10);
        assert!(v.levels.is_empty());
        assert_eq!(v.lines, 0);
    }
}
