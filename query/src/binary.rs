//! Binary operators: arithmetic, comparisons (filtering or `bool`), set
//! operators, and vector matching with `on`/`ignoring`/`group_*`.

use std::collections::{HashMap, HashSet};

use sextant_storage::{Labels, METRIC_NAME};

use crate::ast::{BinOp, Side, VectorMatching};
use crate::error::{Error, Result};
use crate::native::{self, Notes};
use crate::value::{Elem, NameCache, Value, filter_labels, set_label};

/// `lhs op rhs` on numbers: (value, keep) where `keep` is false for a
/// comparison that does not hold.
pub(crate) fn apply(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eql => (l, l == r),
        BinOp::Neq => (l, l != r),
        BinOp::Gtr => (l, l > r),
        BinOp::Lss => (l, l < r),
        BinOp::Gte => (l, l >= r),
        BinOp::Lte => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
        // Only histograms can be trimmed (see `native::binary`).
        BinOp::TrimUpper | BinOp::TrimLower => (f64::NAN, false),
    }
}

fn bool_value(keep: bool) -> f64 {
    if keep { 1.0 } else { 0.0 }
}

pub(crate) fn eval(
    op: BinOp,
    l: Value,
    r: Value,
    bool_mode: bool,
    matching: Option<&VectorMatching>,
    (names, notes): (&mut NameCache, &mut Notes),
) -> Result<Value> {
    match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            let (v, keep) = apply(op, a, b);
            Ok(Value::Scalar(if op.is_comparison() {
                bool_value(keep)
            } else {
                v
            }))
        }
        (Value::Vector(v), Value::Scalar(s)) => Ok(Value::Vector(vector_scalar(
            op,
            v,
            s,
            (bool_mode, false),
            names,
            notes,
        ))),
        (Value::Scalar(s), Value::Vector(v)) => Ok(Value::Vector(vector_scalar(
            op,
            v,
            s,
            (bool_mode, true),
            names,
            notes,
        ))),
        (Value::Vector(a), Value::Vector(b)) => {
            let default = VectorMatching::default();
            let m = matching.unwrap_or(&default);
            Ok(Value::Vector(match op {
                BinOp::And | BinOp::Or | BinOp::Unless => set_op(op, a, b, m),
                _ => vector_vector(op, a, b, bool_mode, m, (names, notes))?,
            }))
        }
        _ => Err(Error::Eval(
            "binary operation on unsupported operand types".into(),
        )),
    }
}

fn vector_scalar(
    op: BinOp,
    v: Vec<Elem>,
    s: f64,
    (bool_mode, scalar_left): (bool, bool),
    names: &mut NameCache,
    notes: &mut Notes,
) -> Vec<Elem> {
    let mut out = Vec::with_capacity(v.len());
    for el in v {
        if el.h.is_some() || op.is_trim() {
            let h = el.h.as_ref();
            let (l, r) = if scalar_left {
                ((s, None), (el.v, h))
            } else {
                ((el.v, h), (s, None))
            };
            if let Some((mut e, _)) = native::binary(op, l, r, notes) {
                // A trim keeps the name, as a filter does.
                e.labels = el.labels.clone();
                e.drop_name = el.drop_name;
                out.push(if op.is_trim() { e } else { e.unnamed(names) });
            }
            continue;
        }
        let (a, b) = if scalar_left { (s, el.v) } else { (el.v, s) };
        let (value, keep) = apply(op, a, b);
        if op.is_comparison() {
            if bool_mode {
                out.push(Elem::float(el.labels, bool_value(keep)).unnamed(names));
            } else if keep {
                // The vector's own value survives a filter, whichever side it is on.
                out.push(el);
            }
        } else {
            out.push(Elem { v: value, ..el }.unnamed(names));
        }
    }
    out
}

/// The matching signature of a series.
fn signature(labels: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        filter_labels(labels, &m.labels, true)
    } else {
        // Only the name is left out, as in Prometheus: series of one name
        // whose `__type__` or `__unit__` differ stay apart.
        let mut drop = m.labels.clone();
        drop.push(METRIC_NAME.to_string());
        filter_labels(labels, &drop, false)
    }
}

fn set_op(op: BinOp, a: Vec<Elem>, b: Vec<Elem>, m: &VectorMatching) -> Vec<Elem> {
    let right: HashSet<Labels> = b.iter().map(|e| signature(&e.labels, m)).collect();
    match op {
        BinOp::And => a
            .into_iter()
            .filter(|e| right.contains(&signature(&e.labels, m)))
            .collect(),
        BinOp::Unless => a
            .into_iter()
            .filter(|e| !right.contains(&signature(&e.labels, m)))
            .collect(),
        _ => {
            let left: HashSet<Labels> = a.iter().map(|e| signature(&e.labels, m)).collect();
            let mut out = a;
            out.extend(
                b.into_iter()
                    .filter(|e| !left.contains(&signature(&e.labels, m))),
            );
            out
        }
    }
}

fn vector_vector(
    op: BinOp,
    a: Vec<Elem>,
    b: Vec<Elem>,
    bool_mode: bool,
    m: &VectorMatching,
    (names, notes): (&mut NameCache, &mut Notes),
) -> Result<Vec<Elem>> {
    let side = m.group.as_ref().map(|(s, _)| *s);
    let include: &[String] = m.group.as_ref().map_or(&[], |(_, l)| l.as_slice());
    // The "many" side is iterated; the "one" side is looked up.
    let (many, one, swapped) = match side {
        Some(Side::Right) => (b, a, true),
        _ => (a, b, false),
    };
    let mut one_by_sig: HashMap<Labels, Elem> = HashMap::new();
    for e in one {
        let sig = signature(&e.labels, m);
        if let Some(prev) = one_by_sig.get(&sig) {
            let which = if swapped { "left" } else { "right" };
            let mut pair = [prom_string(&prev.labels), prom_string(&e.labels)];
            pair.sort();
            return Err(Error::Eval(format!(
                "found duplicate series for the match group {} on the {which} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                prom_string(&sig),
                pair[0],
                pair[1]
            )));
        }
        one_by_sig.insert(sig, e);
    }
    // `fill_left` stands in for a missing "many" side, `fill_right` for a
    // missing "one" side (Prometheus swaps the operands of group_right
    // before it fills), each labelled by its match group.
    let mut many: Vec<Elem> = many;
    if let Some(v) = m.fill_left {
        let present: HashSet<Labels> = many.iter().map(|e| signature(&e.labels, m)).collect();
        let mut missing: Vec<&Labels> = one_by_sig
            .keys()
            .filter(|s| !present.contains(*s))
            .collect();
        missing.sort();
        many.extend(missing.into_iter().map(|sig| Elem::float(sig.clone(), v)));
    }
    let mut out = Vec::new();
    let mut seen_sigs: HashSet<Labels> = HashSet::new();
    let mut seen_results: HashSet<Labels> = HashSet::new();
    let mut filled_one;
    for e in many {
        let sig = signature(&e.labels, m);
        let o = match (one_by_sig.get(&sig), m.fill_right) {
            (Some(o), _) => o,
            (None, Some(v)) => {
                filled_one = Elem::float(sig.clone(), v);
                &filled_one
            }
            (None, None) => continue,
        };
        // Checked before a comparison filters anything out, as Prometheus does.
        if side.is_none() && !seen_sigs.insert(sig.clone()) {
            return Err(Error::Eval(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
            ));
        }
        let (l, r) = if swapped { (o, &e) } else { (&e, o) };
        let mut hist = None;
        let (value, keep) = if l.h.is_some() || r.h.is_some() || op.is_trim() {
            match native::binary(op, (l.v, l.h.as_ref()), (r.v, r.h.as_ref()), notes) {
                Some((x, keep)) => {
                    hist = x.h;
                    (0.0, keep)
                }
                None => continue,
            }
        } else {
            apply(op, l.v, r.v)
        };
        if hist.is_some() && op.is_comparison() && !bool_mode {
            // A histogram comparison that holds keeps the many side.
            hist = e.h.clone();
        }
        let value = if op.is_comparison() {
            if bool_mode {
                bool_value(keep)
            } else if keep {
                value
            } else {
                continue;
            }
        } else {
            value
        };
        // Arithmetic drops the name at once, in either mode, as Prometheus
        // does; `bool` drops it (late, when delayed); a filter keeps it.
        let mut labels = e.labels.clone();
        let mut drop_name = e.drop_name;
        if op.is_comparison() && bool_mode {
            labels = names.drop_name(&labels);
            drop_name = true;
        } else if !op.is_comparison() && !op.is_trim() {
            labels = names.dropped(&labels);
        }
        if side.is_none() {
            labels = if m.on {
                filter_labels(&labels, &m.labels, true)
            } else {
                filter_labels(&labels, &m.labels, false)
            };
        }
        for name in include {
            labels = set_label(&labels, name, o.labels.get(name).unwrap_or(""));
        }
        if side.is_some() && !seen_results.insert(labels.clone()) {
            return Err(Error::Eval(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        out.push(Elem {
            labels,
            v: value,
            h: if op.is_comparison() && bool_mode {
                None
            } else {
                hist
            },
            drop_name,
        });
    }
    Ok(out)
}

/// Labels as Prometheus prints them in errors: `{__name__="x", a="b"}`.
fn prom_string(l: &Labels) -> String {
    let pairs: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}
