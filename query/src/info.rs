//! `info(v, {selector})`: enriches each series of `v` with the data labels
//! of the info series (`target_info` by default) that share its
//! identifying labels (`instance`, `job`), as Prometheus' experimental
//! function does. The parser normalises the selector ([`normalise`]) so
//! the engine loads the info series like any other; [`enrich`] joins
//! them at each evaluation time.

use std::collections::{HashMap, HashSet};

use sextant_storage::{Labels, METRIC_NAME, MatchOp, Matcher};

use crate::ast::{At, Expr, VectorSelector};
use crate::error::{Error, Result};
use crate::value::Elem;

/// The labels that tie a series to its info series.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The `@` and offset of the first selector in `e`, with the offsets of
/// the subqueries around it until one is pinned by `@`: the time the info
/// series are read at.
fn first_selector_time(e: &Expr) -> Option<(Option<At>, i64)> {
    match e {
        Expr::Vector(vs) | Expr::Matrix(vs, _) => Some((vs.at, vs.offset)),
        Expr::Subquery {
            expr, offset, at, ..
        } => {
            let (a, o) = first_selector_time(expr)?;
            Some(if a.is_some() {
                (a, o)
            } else {
                (*at, o + offset)
            })
        }
        e => e.children().into_iter().find_map(first_selector_time),
    }
}

/// `info(v[, {sel}])` as the engine runs it: the selector gets the info
/// metric names it means (`target_info` when it names none; any `*_info`
/// when it only excludes names) and the time of `v`'s first selector.
pub(crate) fn normalise(args: &mut Vec<Expr>) -> std::result::Result<(), String> {
    let time = first_selector_time(&args[0]);
    if args.len() == 1 {
        args.push(Expr::Vector(VectorSelector {
            name: None,
            matchers: Vec::new(),
            offset: 0,
            at: None,
            edges: crate::ast::Edges::Plain,
        }));
    }
    let Expr::Vector(vs) = &mut args[1] else {
        return Err(
            "the second argument of info() must be a label selector like {data=~\".+\"}".into(),
        );
    };
    if vs.offset != 0 || vs.at.is_some() {
        return Err(
            "the label selector of info() takes no offset or @ (the first argument's apply)".into(),
        );
    }
    let names: Vec<&Matcher> = vs
        .matchers
        .iter()
        .filter(|m| m.name == METRIC_NAME)
        .collect();
    let positive = names
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex));
    if !positive {
        let m = if names.is_empty() {
            Matcher::equal(METRIC_NAME, "target_info")
        } else {
            Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info").map_err(|e| e.to_string())?
        };
        vs.matchers.push(m);
    }
    if let Some((at, offset)) = time {
        vs.at = at;
        vs.offset = offset;
    }
    Ok(())
}

/// The identifying labels of a series, with its info metric's name.
fn signature(name: &str, l: &Labels) -> (String, [String; 2]) {
    (
        name.to_string(),
        IDENTIFYING.map(|k| l.get(k).unwrap_or("").to_string()),
    )
}

/// Joins `base` with the info series `infos` (labels and sample time,
/// read through `sel`).
pub(crate) fn enrich(
    base: Vec<Elem>,
    infos: Vec<(Labels, i64)>,
    sel: &VectorSelector,
) -> Result<Vec<Elem>> {
    let (names, data): (Vec<&Matcher>, Vec<&Matcher>) =
        sel.matchers.iter().partition(|m| m.name == METRIC_NAME);
    let data_names: HashSet<&str> = data.iter().map(|m| m.name.as_str()).collect();
    let is_info = |l: &Labels| {
        let n = l.metric_name().unwrap_or("");
        names.iter().all(|m| m.matches(n))
    };
    // The newest info series per signature; two as new are a conflict.
    let mut by_sig: HashMap<(String, [String; 2]), (Labels, i64)> = HashMap::new();
    let mut info_names: Vec<String> = Vec::new();
    for (l, t) in infos {
        let name = l.metric_name().unwrap_or("").to_string();
        if !info_names.contains(&name) {
            info_names.push(name.clone());
        }
        let sig = signature(&name, &l);
        match by_sig.get(&sig) {
            Some((_, seen)) if *seen > t => {}
            Some((other, seen)) if *seen == t => {
                return Err(Error::Eval(format!(
                    "found duplicate series for info metric: existing {other:?} @ {seen}, new {l:?} @ {t}"
                )));
            }
            _ => {
                by_sig.insert(sig, (l, t));
            }
        }
    }
    let empty_ok = data.iter().all(|m| m.matches(""));
    let mut out = Vec::with_capacity(base.len());
    let mut seen: HashSet<Labels> = HashSet::new();
    for e in base {
        if is_info(&e.labels) {
            out.push(e);
            continue;
        }
        let mut add: Vec<(String, String)> = Vec::new();
        let mut matched = false;
        for name in &info_names {
            let Some((info, _)) = by_sig.get(&signature(name, &e.labels)) else {
                continue;
            };
            matched = true;
            for (k, v) in info.iter() {
                if k == METRIC_NAME || (!data_names.is_empty() && !data_names.contains(k)) {
                    continue;
                }
                if let Some((_, have)) = add.iter().find(|(n, _)| n == k) {
                    if have != v {
                        return Err(Error::Eval(format!("conflicting label: {k}")));
                    }
                    continue;
                }
                if e.labels.get(k).is_none() {
                    add.push((k.to_string(), v.to_string()));
                }
            }
        }
        if !matched && !empty_ok {
            continue;
        }
        let mut labels = e.labels.clone();
        for (k, v) in &add {
            labels = crate::value::set_label(&labels, k, v);
        }
        if !seen.insert(labels.clone()) {
            return Err(Error::Eval(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
        out.push(Elem { labels, ..e });
    }
    Ok(out)
}
