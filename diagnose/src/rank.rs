//! Localisation: which candidate explains the symptoms. Each candidate's
//! own change is measured against the baseline, per entry request, so
//! contributions add up the way the symptom does:
//!
//! - latency: the increase of its synchronous self time per entry request
//!   (a caller waiting on a slow callee has no more self time; the callee
//!   has), as a share of all increases;
//! - errors: the increase of the failed entry requests whose failure
//!   started there, as a share of all increases.
//!
//! The score is the mean of the shares of the symptom kinds present.
//! Then four checks a person would make: calls nobody answered blame the
//! link when the callee's other callers get answers (and the callee when
//! none do); a callee overloaded by a caller that now calls it several
//! times per request blames the caller (a retry storm); a service whose
//! excess sits on one instance names the instance; a candidate that
//! changed version in the window ranks higher, one that changed but
//! explains nothing stays out.

use rustc_hash::FxHashMap;

use crate::detect::Detection;
use crate::profile::{Key, Profile};

/// A root-cause candidate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suspect {
    /// A node or a link.
    Key(Key),
    /// One instance of a service: (service, instance id).
    Instance(String, String),
}

impl Suspect {
    /// The node or link whose profile figures describe it (an instance's
    /// are its service's).
    pub fn key(&self) -> Key {
        match self {
            Suspect::Key(k) => k.clone(),
            Suspect::Instance(s, _) => Key::Node(s.clone()),
        }
    }
}

/// A scored candidate.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// Who.
    pub suspect: Suspect,
    /// Share of the symptoms explained, 0–1.
    pub score: f64,
    /// Self time per entry request, window vs baseline, ms.
    pub self_ms: (f64, f64),
    /// Failed entry requests started here per entry request, window vs baseline.
    pub blamed: (f64, f64),
    /// Its share of the latency increase, 0–1.
    pub latency_share: f64,
    /// Its share of the failed-request increase, 0–1.
    pub error_share: f64,
    /// Why it moved (checks that changed the ranking), for the explanation.
    pub notes: Vec<String>,
    /// A deploy in the window: (old version, new version, first seen ms).
    pub deploy: Option<(String, String, i64)>,
}

/// Candidates scoring less are not reported.
pub const MIN_SCORE: f64 = 0.02;

fn pos(x: f64) -> f64 {
    x.max(0.0)
}

/// Failed-request blame per candidate, with unanswered calls moved to the
/// link or the callee (see the module doc).
fn blame_with_links(w: &Profile, base: &Profile) -> (FxHashMap<Key, u64>, Vec<(String, String)>) {
    let mut blamed = w.blamed.clone();
    let mut links = Vec::new();
    let fraction = |caller: &str, callee: &str| w.unanswered_share(caller, callee);
    let mut pairs: Vec<(&(String, String), &u64)> = w.blamed_unanswered.iter().collect();
    pairs.sort();
    for ((a, b), &n) in pairs {
        // Calls to a peer are never answered by a span: only a service
        // that serves can have had its answers lost on the way.
        if !w.serving.contains(b) {
            continue;
        }
        let Some((_, f_ab)) = fraction(a, b) else {
            continue;
        };
        let others: Vec<f64> = w
            .unanswered
            .iter()
            .filter(|((c, callee), (calls, _))| callee == b && c != a && *calls >= 10)
            .filter_map(|((c, _), _)| fraction(c, b).map(|x| x.1))
            .collect();
        // A callee in trouble of its own (slower, or failing requests by
        // itself) is the cause; a healthy one behind a failing link is not.
        let node = Key::Node(b.clone());
        // Its own spans only: failed calls to it are short and would make
        // any service look slower.
        let slower = match (w.server_self_per_span(b), base.server_self_per_span(b)) {
            (Some(now), Some(then)) => now > 1.5 * then + 0.5,
            _ => false,
        };
        let own_failures = w.blamed.get(&node).copied().unwrap_or(0).saturating_sub(n);
        let failing = own_failures as f64 / w.requests.max(1) as f64
            > 2.0 * base.blamed_per_request(&node) + 0.001;
        let link = !slower
            && !failing
            && if others.is_empty() {
                // One caller only: a link drops some calls; a dead callee all.
                f_ab < 0.9
            } else {
                others.iter().all(|&f| f < 0.25 * f_ab)
            };
        if link {
            let node = blamed.entry(Key::Node(b.clone())).or_default();
            *node = node.saturating_sub(n);
            *blamed.entry(Key::Link(a.clone(), b.clone())).or_default() += n;
            links.push((a.clone(), b.clone()));
        }
    }
    (blamed, links)
}

/// The version a service moved to in the window, if it did: a version the
/// baseline never saw, first seen a minute or more into the window (one
/// seen from the start was deployed before it).
fn deploy(w: &Profile, base: &Profile, svc: &str) -> Option<(String, String, i64)> {
    let now = w.versions.get(svc)?;
    let before = base.versions.get(svc);
    let (new, &at) = now
        .iter()
        .filter(|(v, _)| before.is_none_or(|b| !b.contains_key(*v)))
        .min_by_key(|(_, t)| **t)?;
    let old = now
        .iter()
        .filter(|(v, t)| *v != new && **t < at)
        .min_by_key(|(_, t)| **t)
        .map(|(v, _)| v.clone())?;
    Some((old, new.clone(), at))
}

/// How much a deviation below the symptom threshold still counts: nothing
/// under 2 deviations, fully from the threshold on.
fn weight(flagged: bool, score: f64) -> f64 {
    if flagged {
        1.0
    } else {
        ((score - 2.0) / (crate::detect::MIN_SCORE - 2.0)).clamp(0.0, 1.0)
    }
}

/// Ranks the candidates of window `w` against baseline `base`, for what
/// detection found.
pub fn rank(w: &Profile, base: &Profile, found: &Detection) -> Vec<Ranked> {
    let symptoms = &found.symptoms;
    let errors = weight(
        symptoms.iter().any(|s| s.indicator == "error_ratio"),
        found.error_score,
    );
    let latency = weight(
        symptoms.iter().any(|s| s.indicator.starts_with("latency")),
        found.latency_score,
    );
    let lag_topics: Vec<&str> = symptoms
        .iter()
        .filter(|s| s.indicator == "consumer_lag")
        .map(|s| s.node.as_str())
        .collect();
    let (blamed, _links) = blame_with_links(w, base);
    let per_req = |n: u64| {
        if w.requests == 0 {
            0.0
        } else {
            n as f64 / w.requests as f64
        }
    };
    let mut keys: Vec<Key> = w.self_ms.keys().chain(blamed.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut rows: Vec<Ranked> = keys
        .into_iter()
        .map(|k| Ranked {
            blamed: (
                per_req(blamed.get(&k).copied().unwrap_or(0)),
                base.blamed_per_request(&k),
            ),
            ..unranked(w, base, k)
        })
        .collect();
    let total_self: f64 = rows.iter().map(|r| pos(r.self_ms.0 - r.self_ms.1)).sum();
    let total_blame: f64 = rows.iter().map(|r| pos(r.blamed.0 - r.blamed.1)).sum();
    let kinds = errors + latency + f64::from(u8::from(!lag_topics.is_empty()));
    for r in &mut rows {
        if total_self > 0.0 {
            r.latency_share = pos(r.self_ms.0 - r.self_ms.1) / total_self;
        }
        if total_blame > 0.0 {
            r.error_share = pos(r.blamed.0 - r.blamed.1) / total_blame;
        }
        r.score = (latency * r.latency_share + errors * r.error_share) / kinds.max(1.0);
    }
    let mut out: FxHashMap<Suspect, Ranked> =
        rows.into_iter().map(|r| (r.suspect.clone(), r)).collect();
    lag_share(w, base, &lag_topics, kinds, &mut out);
    retry_storms(w, base, &mut out);
    instances(w, base, &mut out);
    for r in out.values_mut() {
        if let Suspect::Key(Key::Node(svc)) = &r.suspect
            && let Some(d) = deploy(w, base, svc)
        {
            if r.score >= MIN_SCORE {
                r.score = (r.score * 1.25).min(1.0);
                r.notes
                    .push(format!("deployed {} → {} in the window", d.0, d.1));
            }
            r.deploy = Some(d);
        }
    }
    let mut v: Vec<Ranked> = out.into_values().filter(|r| r.score >= MIN_SCORE).collect();
    v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.suspect.cmp(&b.suspect)));
    v
}

/// A candidate not scored yet.
fn unranked(w: &Profile, base: &Profile, k: Key) -> Ranked {
    Ranked {
        self_ms: (w.self_per_request(&k), base.self_per_request(&k)),
        blamed: (w.blamed_per_request(&k), base.blamed_per_request(&k)),
        suspect: Suspect::Key(k),
        score: 0.0,
        latency_share: 0.0,
        error_share: 0.0,
        notes: Vec::new(),
        deploy: None,
    }
}

/// A lagging topic: its consumers, by how much slower each handles a
/// message.
fn lag_share(
    w: &Profile,
    base: &Profile,
    topics: &[&str],
    kinds: f64,
    out: &mut FxHashMap<Suspect, Ranked>,
) {
    if topics.is_empty() {
        return;
    }
    // Consumers: services whose consumer spans read the topic are the ones
    // with lag samples; their slowdown per span tells them apart.
    let mut slower: Vec<(Key, f64)> = Vec::new();
    for svc in &w.services {
        let k = Key::Node(svc.clone());
        if let (Some(now), Some(then)) = (w.self_per_span(&k), base.self_per_span(&k))
            && then > 0.0
            && now > 2.0 * then
            && w.consumes.contains(svc)
        {
            slower.push((k, now / then));
        }
    }
    let total: f64 = slower.iter().map(|(_, r)| r).sum();
    for (k, r) in slower {
        let add = r / total / kinds.max(1.0);
        let e = out
            .entry(Suspect::Key(k.clone()))
            .or_insert_with(|| unranked(w, base, k));
        e.score += add;
        e.notes.push(format!(
            "handles each message {r:.1}× slower; its topic lags"
        ));
    }
}

/// A caller now calling a callee several times per request: the callee's
/// trouble is the caller's doing.
fn retry_storms(w: &Profile, base: &Profile, out: &mut FxHashMap<Suspect, Ranked>) {
    let mut pairs: Vec<&(String, String)> = w.fan_out.keys().collect();
    pairs.sort();
    for (a, b) in pairs {
        let (Some(now), Some(then)) = (w.calls_per_visit(a, b), base.calls_per_visit(a, b)) else {
            continue;
        };
        if w.fan_out[&(a.clone(), b.clone())].1 < 20 || now < 1.8 * then {
            continue;
        }
        let mut moved = 0.0;
        for k in [Key::Node(b.clone()), Key::Link(a.clone(), b.clone())] {
            if let Some(r) = out.get_mut(&Suspect::Key(k)) {
                let m = 0.9 * r.score;
                r.score -= m;
                moved += m;
            }
        }
        if moved <= 0.0 {
            continue;
        }
        let k = Key::Node(a.clone());
        let e = out
            .entry(Suspect::Key(k.clone()))
            .or_insert_with(|| unranked(w, base, k));
        e.score += moved;
        e.notes.push(format!(
            "calls {b} {now:.1} times per request (normally {then:.1}): its retries overload {b}"
        ));
    }
}

/// A service whose excess sits on one of several instances: that instance.
fn instances(w: &Profile, base: &Profile, out: &mut FxHashMap<Suspect, Ranked>) {
    let services: Vec<String> = out
        .values()
        .filter(|r| r.score >= MIN_SCORE)
        .filter_map(|r| match &r.suspect {
            Suspect::Key(Key::Node(s)) if w.instances.contains_key(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    for svc in services {
        let wi = &w.instances[&svc];
        let bi = base.instances.get(&svc);
        if wi.requests.len() < 2 {
            continue;
        }
        let total_req: u64 = wi.requests.values().sum();
        let rate = |m: &FxHashMap<String, f64>, i: &str, n: u64| {
            if n == 0 {
                0.0
            } else {
                m.get(i).copied().unwrap_or(0.0) / n as f64
            }
        };
        let excess: Vec<(String, f64)> = wi
            .requests
            .keys()
            .map(|i| {
                let self_now = rate(&wi.self_ms, i, w.requests);
                let self_then = bi.map_or(0.0, |b| rate(&b.self_ms, i, base.requests));
                let blamed_now = wi.blamed.get(i).copied().unwrap_or(0) as f64;
                let blamed_then = bi.and_then(|b| b.blamed.get(i)).map_or(0.0, |&n| {
                    n as f64 * w.requests as f64 / base.requests.max(1) as f64
                });
                // Both in "per window" units: self ms per request weighted
                // like a failed request worth 100 ms.
                let e = pos(self_now - self_then) * w.requests as f64 / 100.0
                    + pos(blamed_now - blamed_then);
                (i.clone(), e)
            })
            .collect();
        let sum: f64 = excess.iter().map(|e| e.1).sum();
        let Some((inst, top)) = excess.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned() else {
            continue;
        };
        if sum <= 0.0 {
            continue;
        }
        let share = top / sum;
        let traffic = wi.requests.get(&inst).copied().unwrap_or(0) as f64 / total_req as f64;
        // Most of the excess, and twice its traffic's share of it; of two
        // instances (half the traffic each), nine tenths.
        if share < 0.6 || share < (2.0 * traffic).min(0.9) {
            continue;
        }
        let parent = out
            .get_mut(&Suspect::Key(Key::Node(svc.clone())))
            .expect("ranked");
        let score = parent.score * share;
        parent.score *= 1.0 - share * 0.6;
        let (self_ms, blamed) = (parent.self_ms, parent.blamed);
        let (latency_share, error_share) = (parent.latency_share, parent.error_share);
        out.insert(
            Suspect::Instance(svc.clone(), inst.clone()),
            Ranked {
                suspect: Suspect::Instance(svc.clone(), inst.clone()),
                score,
                self_ms,
                blamed,
                latency_share,
                error_share,
                notes: vec![format!(
                    "{:.0}% of {svc}'s excess is on {inst}, which serves {:.0}% of its requests",
                    share * 100.0,
                    traffic * 100.0
                )],
                deploy: None,
            },
        );
    }
}
