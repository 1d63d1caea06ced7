//! A window's profile, from its spans: what the entry points answered
//! (requests, errors, latency per minute), and for every candidate cause
//! how much of the requests' time was spent in it and how many failed
//! requests it started. Diagnosis compares the profile of the window with
//! the profiles of comparable windows; sampling cancels out, because every
//! quantity is per entry request or a ratio.
//!
//! - *Self time*: a span's duration minus the time its children cover.
//!   A server span's self time is its service's own work (waiting for a
//!   pool included); a client span answered by a server span leaves the
//!   network and queueing between them (the link); a client span nobody
//!   answers is all the peer's (a database, a third party). Only the
//!   synchronous part of a request counts: a consumer's work after a
//!   message was published does not delay the request that published it.
//! - *Blame*: a failed request is followed down its failed children to the
//!   deepest failure that no child failure explains. A client span that
//!   gave up on a callee still working (a timeout) blames the callee's
//!   slowest descendant, not the caller: the caller's timeout is a symptom.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};
use sextant_storage::{AnyValue, Attributes, Span, SpanId, SpanKind, TraceId};

use crate::sketch::Sketch;

/// A candidate cause.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A service, database, third party or topic, by name.
    Node(String),
    /// Calls from one service to another.
    Link(String, String),
}

/// One minute of the entry points.
#[derive(Debug, Clone, Default)]
pub struct Minute {
    /// Entry requests.
    pub requests: u64,
    /// Failed entry requests.
    pub errors: u64,
    /// Entry latency.
    pub latency: Sketch,
    /// Self time per candidate, ms.
    pub self_ms: FxHashMap<Key, f64>,
    /// Failed requests blamed per candidate.
    pub blamed: FxHashMap<Key, u64>,
}

/// What a node's own spans said about it.
#[derive(Debug, Clone, Default)]
pub struct Instances {
    /// The resource attribute naming them ([`instance_of`]).
    pub key: &'static str,
    /// Spans per instance.
    pub requests: FxHashMap<String, u64>,
    /// Self time per instance, ms.
    pub self_ms: FxHashMap<String, f64>,
    /// Failed requests blamed per instance.
    pub blamed: FxHashMap<String, u64>,
}

/// The profile of one window.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Entry requests (root spans).
    pub requests: u64,
    /// Failed entry requests.
    pub errors: u64,
    /// Entry latency per entry node.
    pub entry_latency: FxHashMap<String, Sketch>,
    /// Entry requests and errors per entry node.
    pub entry_counts: FxHashMap<String, (u64, u64)>,
    /// Synchronous self time per candidate, ms.
    pub self_ms: FxHashMap<Key, f64>,
    /// Self-time spans per candidate (to tell a slower node from a busier one).
    pub spans: FxHashMap<Key, u64>,
    /// Failed entry requests blamed per candidate.
    pub blamed: FxHashMap<Key, u64>,
    /// Per service: its instances.
    pub instances: FxHashMap<String, Instances>,
    /// Calls from a service to another: (client spans, distinct calling spans).
    pub fan_out: FxHashMap<(String, String), (u64, u64)>,
    /// Calls to an instrumented service that got no answer:
    /// (caller, callee) → (calls, failed without a server span).
    pub unanswered: FxHashMap<(String, String), (u64, u64)>,
    /// The same per minute (minute index since the epoch), to read the
    /// failure rate while failures happen rather than over the window.
    pub unanswered_minutes: FxHashMap<(String, String), BTreeMap<i64, (u64, u64)>>,
    /// Delay between publishing and consuming, per topic, seconds.
    pub lag: FxHashMap<String, Sketch>,
    /// Entry minutes (minute index since the epoch).
    pub minutes: BTreeMap<i64, Minute>,
    /// Failed spans per candidate (of its synchronous spans).
    pub failed: FxHashMap<Key, u64>,
    /// Example failing spans per candidate: (trace, span), oldest first.
    pub examples: FxHashMap<Key, Vec<(TraceId, SpanId)>>,
    /// The spans with the most self time per candidate: (self ns, trace, span).
    pub slowest: FxHashMap<Key, Vec<(i64, TraceId, SpanId)>>,
    /// The uninstrumented peers, by name.
    pub peers: FxHashMap<String, Peer>,
    /// Failed requests blamed on calls nobody answered, per (caller, callee).
    pub blamed_unanswered: FxHashMap<(String, String), u64>,
    /// Versions seen per service, with the first time each was seen (ms).
    pub versions: FxHashMap<String, BTreeMap<String, i64>>,
    /// Services that emit spans.
    pub services: FxHashSet<String>,
    /// Services with spans of their own work (any kind but client and
    /// producer): a datastore that reports its calls as client spans under
    /// its own name emits spans but serves none of them.
    pub serving: FxHashSet<String>,
    /// Services that consume messages (emit consumer spans).
    pub consumes: FxHashSet<String>,
    /// Who calls whom (services, peers, topics), for propagation paths.
    pub edges: FxHashSet<(String, String)>,
    /// How a caller's client spans name each callee: per (caller, callee),
    /// the first seen (to chart a link by its own attribute).
    pub links: FxHashMap<(String, String), Naming>,
    /// Spans read.
    pub span_count: u64,
}

/// How many example traces are kept per candidate.
const EXAMPLES: usize = 5;
/// Failure descents stop at this depth (a trace is a tree; this bounds the
/// walk whatever a producer sends).
const MAX_DEPTH: usize = 256;

fn text<'a>(a: &'a Attributes, key: &str) -> Option<&'a str> {
    a.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
        AnyValue::Str(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// How client spans name what they call: the attribute and its value,
/// and the query language's matcher selecting those spans.
#[derive(Debug, Clone)]
pub struct Naming {
    /// The attribute that names it, and the value.
    pub label: (&'static str, String),
    /// The matcher selecting the client spans calling it.
    pub matcher: String,
}

/// A node that client spans call and no server span answers (a database,
/// a third party), as the profile keeps it under its [`peer_name`].
#[derive(Debug, Clone)]
pub struct Peer {
    /// `database` or `external`.
    pub kind: &'static str,
    /// How the client spans calling it name it.
    pub naming: Naming,
}

/// `"` and `\` escaped for a string of the query language.
pub fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// What names the peer client span `s` calls, when no server span
/// answers it: the attribute and its value. Its address
/// (`server.address`, `net.peer.name`, `peer.service`), else its URL's
/// host (`url.full`, `http.url`), else its database's namespace
/// (`db.namespace`, `db.name`), else its IP address
/// (`network.peer.address`, `net.sock.peer.addr`, `net.peer.ip`), else its
/// database's system, else (`name`) the span's own name.
fn naming(s: &Span) -> (&'static str, &str) {
    let a = &s.attributes;
    let first = |keys: &[&'static str]| keys.iter().find_map(|&k| Some((k, text(a, k)?)));
    if let Some(n) = first(&["server.address", "net.peer.name", "peer.service"]) {
        return n;
    }
    if let Some((k, url)) = first(&["url.full", "http.url"])
        && let Some(host) = url_host(url)
    {
        return (k, host);
    }
    // The peer's IP address, when nothing names it better.
    let ip = || first(&["network.peer.address", "net.sock.peer.addr", "net.peer.ip"]);
    match first(&["db.system.name", "db.system"]) {
        Some(sys) => first(&["db.namespace", "db.name"])
            .or_else(ip)
            .unwrap_or(sys),
        None => ip().unwrap_or(("name", &s.name)),
    }
}

/// The host of a URL (`https://user@api.stripe.com:443/v1` →
/// `api.stripe.com`, `http://[::1]:80/` → `::1`).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// The graph's name of a peer named by `(key, value)`.
fn graph_name((key, value): (&str, &str)) -> String {
    match key {
        "name" => format!("{value} (peer)"),
        _ => value.to_string(),
    }
}

/// How client span `s` names what it calls (as [`naming`] says), with
/// the matcher selecting such spans.
pub fn naming_of(s: &Span) -> Naming {
    let (key, value) = naming(s);
    let matcher = match key {
        // A host is matched whole in the URL (after any user, an IPv6
        // address in its brackets), its dots as dots.
        "url.full" | "http.url" => {
            let mut host: String = value
                .chars()
                .flat_map(|c| {
                    c.is_ascii_punctuation()
                        .then_some('\\')
                        .into_iter()
                        .chain([c])
                })
                .collect();
            if value.contains(':') {
                host = format!("\\[{host}\\]");
            }
            let pattern = format!("[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#@]*@)?{host}([/:?#].*)?");
            format!("{key}=~\"{}\"", quoted(&pattern))
        }
        _ => format!("{key}=\"{}\"", quoted(value)),
    };
    Naming {
        label: (key, value.to_string()),
        matcher,
    }
}

/// The peer client span `s` calls, when no server span answers it.
pub fn peer(s: &Span) -> Peer {
    let database = ["db.system.name", "db.system"]
        .into_iter()
        .any(|k| text(&s.attributes, k).is_some());
    Peer {
        kind: if database { "database" } else { "external" },
        naming: naming_of(s),
    }
}

/// The node a client span without a server answer calls (as the graph
/// names it), without building the rest of its [`Peer`].
pub fn peer_name(s: &Span) -> String {
    graph_name(naming(s))
}

struct TraceView<'a> {
    spans: Vec<&'a Span>,
    services: Vec<String>,
    children: Vec<Vec<usize>>,
    parents: Vec<Option<usize>>,
}

impl<'a> TraceView<'a> {
    fn new(spans: Vec<&'a Span>) -> TraceView<'a> {
        let index: FxHashMap<SpanId, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        let mut parents = vec![None; spans.len()];
        for (i, s) in spans.iter().enumerate() {
            if let Some(&p) = index.get(&s.parent_span_id)
                && p != i
            {
                children[p].push(i);
                parents[i] = Some(p);
            }
        }
        let services = spans.iter().map(|s| s.service().into_owned()).collect();
        TraceView {
            spans,
            services,
            children,
            parents,
        }
    }

    fn parent(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }

    /// Who made client call `i`: its own service, unless the peer emitted
    /// the client span under its own name (a datastore reporting its own
    /// calls), when the caller is the parent span's service.
    fn caller(&self, i: usize, peer: &str) -> &str {
        match self.parent(i) {
            Some(p) if self.services[i] == peer => &self.services[p],
            _ => &self.services[i],
        }
    }

    /// The server span of another service answering span `i`.
    fn answer(&self, i: usize) -> Option<usize> {
        self.children[i].iter().copied().find(|&c| {
            matches!(self.spans[c].kind, SpanKind::Server) && self.services[c] != self.services[i]
        })
    }

    /// Span `i`'s duration not covered by its synchronous children, ns.
    fn self_ns(&self, i: usize) -> i64 {
        let s = self.spans[i];
        let mut iv: Vec<(i64, i64)> = self.children[i]
            .iter()
            .map(|&c| self.spans[c])
            .filter(|c| c.kind != SpanKind::Consumer)
            .map(|c| (c.start_ns.max(s.start_ns), c.end_ns.min(s.end_ns)))
            .filter(|(a, b)| b > a)
            .collect();
        iv.sort_unstable();
        let (mut covered, mut cur) = (0i64, None::<(i64, i64)>);
        for (a, b) in iv {
            match cur {
                Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
                Some((ca, cb)) => {
                    covered += cb - ca;
                    cur = Some((a, b));
                }
                None => cur = Some((a, b)),
            }
        }
        if let Some((ca, cb)) = cur {
            covered += cb - ca;
        }
        (s.duration_ns() - covered).max(0)
    }

    /// The candidate span `i`'s self time is charged to.
    fn key(&self, i: usize) -> Option<Key> {
        let s = self.spans[i];
        match s.kind {
            SpanKind::Client => Some(match self.answer(i) {
                Some(a) => Key::Link(self.services[i].clone(), self.services[a].clone()),
                None => Key::Node(peer_name(s)),
            }),
            SpanKind::Producer => None,
            _ => Some(Key::Node(self.services[i].clone())),
        }
    }

    /// Follows a failure down from span `i` to the span that started it.
    fn blame(&self, mut i: usize) -> usize {
        for _ in 0..MAX_DEPTH {
            let failed_child = self.children[i]
                .iter()
                .copied()
                .filter(|&c| self.spans[c].kind != SpanKind::Consumer && self.spans[c].failed())
                .min_by_key(|&c| self.spans[c].start_ns);
            match failed_child {
                Some(c) => i = c,
                None => {
                    // A client that gave up on a callee still working (or
                    // that succeeded): the callee's slowest part is to blame.
                    return match self.answer(i) {
                        Some(a) if self.spans[i].kind == SpanKind::Client => self.slowest(a),
                        _ => i,
                    };
                }
            }
        }
        i
    }

    /// The span with the most self time under span `i`, following the
    /// longest child.
    fn slowest(&self, mut i: usize) -> usize {
        for _ in 0..MAX_DEPTH {
            let longest = self.children[i]
                .iter()
                .copied()
                .filter(|&c| self.spans[c].kind != SpanKind::Consumer)
                .max_by_key(|&c| self.spans[c].duration_ns());
            match longest {
                Some(c) if self.self_ns(i) < self.spans[c].duration_ns() => i = c,
                _ => return i,
            }
        }
        i
    }

    /// Spans on the synchronous path of the root: everything but consumers
    /// and what they call.
    fn synchronous(&self, root: usize) -> Vec<usize> {
        let mut out = vec![root];
        let mut k = 0;
        while k < out.len() {
            let i = out[k];
            for &c in &self.children[i] {
                if self.spans[c].kind != SpanKind::Consumer {
                    out.push(c);
                }
            }
            k += 1;
        }
        out
    }
}

/// Resource attributes that tell a service's instances apart, best
/// first: the conventions' own, then what Kubernetes, containers and
/// hosts name them by when an SDK leaves it unset.
pub const INSTANCE_KEYS: [&str; 4] = [
    "service.instance.id",
    "k8s.pod.name",
    "container.id",
    "host.name",
];

/// The topic a producer or consumer span names: the attribute
/// (`messaging.destination.name`, or `messaging.destination` before 1.21)
/// and its value.
pub fn topic_of(attributes: &Attributes) -> Option<(&'static str, &str)> {
    ["messaging.destination.name", "messaging.destination"]
        .into_iter()
        .find_map(|k| Some((k, text(attributes, k)?)))
}

/// The instance a resource belongs to: the attribute naming it, and its
/// value.
pub fn instance_of(resource: &Attributes) -> Option<(&'static str, &str)> {
    INSTANCE_KEYS
        .into_iter()
        .find_map(|k| Some((k, text(resource, k)?)))
}

impl Profile {
    /// The profile of `spans` (any order, whole traces ideally).
    pub fn build(spans: &[Span], keep_examples: bool) -> Profile {
        let mut p = Profile {
            span_count: spans.len() as u64,
            ..Profile::default()
        };
        let mut by_trace: FxHashMap<TraceId, Vec<&Span>> = FxHashMap::default();
        for s in spans {
            by_trace.entry(s.trace_id).or_default().push(s);
        }
        let mut traces: Vec<(TraceId, Vec<&Span>)> = by_trace.into_iter().collect();
        // Deterministic examples: oldest trace first.
        traces.sort_by_key(|(id, v)| (v.iter().map(|s| s.start_ns).min(), *id));
        for (_, spans) in traces {
            p.add_trace(TraceView::new(spans), keep_examples);
        }
        p
    }

    fn edge(&mut self, from: &str, to: &str) {
        if from != to && !self.edges.contains(&(from.to_string(), to.to_string())) {
            self.edges.insert((from.to_string(), to.to_string()));
        }
    }

    fn add_trace(&mut self, t: TraceView<'_>, keep_examples: bool) {
        for (i, s) in t.spans.iter().enumerate() {
            let svc = &t.services[i];
            // Looked up first: a window's spans name a few services.
            if !self.services.contains(svc) {
                self.services.insert(svc.clone());
            }
            if !matches!(s.kind, SpanKind::Client | SpanKind::Producer)
                && !self.serving.contains(svc)
            {
                self.serving.insert(svc.clone());
            }
            if let Some(v) = text(&s.resource, "service.version") {
                let first = self
                    .versions
                    .entry(svc.clone())
                    .or_default()
                    .entry(v.to_string())
                    .or_insert(i64::MAX);
                *first = (*first).min(s.start_ms());
            }
            let topic = topic_of(&s.attributes).map(|t| t.1);
            match s.kind {
                SpanKind::Client => {
                    let answer = t.answer(i);
                    if let Some(a) = answer {
                        let e = self
                            .fan_out
                            .entry((svc.clone(), t.services[a].clone()))
                            .or_default();
                        e.0 += 1;
                    }
                    let callee = answer.map_or_else(|| peer_name(s), |a| t.services[a].clone());
                    let caller = t.caller(i, &callee).to_string();
                    self.edge(&caller, &callee);
                    let link = (caller, callee);
                    self.links.entry(link).or_insert_with(|| naming_of(s));
                }
                SpanKind::Producer => {
                    if let Some(topic) = topic {
                        self.edge(svc, topic);
                    }
                }
                SpanKind::Server => {
                    // Server-only instrumentation: a call from the parent's
                    // service with no client span between.
                    if let Some(p) = t.parent(i)
                        && t.spans[p].kind != SpanKind::Client
                        && t.services[p] != *svc
                    {
                        let from = t.services[p].clone();
                        self.edge(&from, svc);
                    }
                }
                SpanKind::Consumer => {
                    self.consumes.insert(svc.clone());
                    if let Some(topic) = topic {
                        self.edge(topic, svc);
                    }
                    // Lag: from the end of the producer span to this start.
                    if let Some(p) = t.parent(i).map(|p| t.spans[p])
                        && p.kind == SpanKind::Producer
                        && let Some(topic) = topic
                    {
                        let lag = (s.start_ns - p.end_ns).max(0) as f64 / 1e9;
                        self.lag.entry(topic.to_string()).or_default().add(lag);
                    }
                }
                _ => {}
            }
        }
        // Calling spans per (caller, callee), for fan-out: distinct parents.
        let mut parents: FxHashSet<(SpanId, &str)> = FxHashSet::default();
        for (i, s) in t.spans.iter().enumerate() {
            if s.kind == SpanKind::Client
                && let Some(a) = t.answer(i)
                && parents.insert((s.parent_span_id, t.services[a].as_str()))
            {
                self.fan_out
                    .entry((t.services[i].clone(), t.services[a].clone()))
                    .or_default()
                    .1 += 1;
            }
        }
        self.unanswered_calls(&t);
        // Requests: the roots, and each message a consumer handles (its
        // work is asynchronous: its own request, its own failures). A span
        // whose parent is not stored is a root too: an uninstrumented proxy
        // in front passes a trace context it never exports.
        for root in 0..t.spans.len() {
            if t.parent(root).is_none() || t.spans[root].kind == SpanKind::Consumer {
                self.add_request(&t, root, keep_examples);
            }
        }
    }

    /// Calls per (caller, callee), and those that failed with no server
    /// span (a refused connection, an expired certificate, a dropped link).
    fn unanswered_calls(&mut self, t: &TraceView<'_>) {
        for (i, s) in t.spans.iter().enumerate() {
            if s.kind != SpanKind::Client {
                continue;
            }
            let answer = t.answer(i);
            let callee = match answer {
                Some(a) => t.services[a].clone(),
                None => {
                    let name = peer_name(s);
                    self.peers.entry(name.clone()).or_insert_with(|| peer(s));
                    name
                }
            };
            let lost = u64::from(answer.is_none() && s.failed());
            let pair = (t.caller(i, &callee).to_string(), callee);
            let m = self
                .unanswered_minutes
                .entry(pair.clone())
                .or_default()
                .entry(s.start_ms().div_euclid(60_000))
                .or_default();
            m.0 += 1;
            m.1 += lost;
            let e = self.unanswered.entry(pair).or_default();
            e.0 += 1;
            e.1 += lost;
        }
    }

    /// Share of `caller`'s calls to `callee` that got no answer, over the
    /// minutes in which some did not (a fault that began mid-window is
    /// measured while it lasts); with the calls counted.
    pub fn unanswered_share(&self, caller: &str, callee: &str) -> Option<(u64, f64)> {
        let minutes = self
            .unanswered_minutes
            .get(&(caller.to_string(), callee.to_string()))?;
        let (calls, lost) = minutes
            .values()
            .filter(|(_, lost)| *lost > 0)
            .fold((0, 0), |a, m| (a.0 + m.0, a.1 + m.1));
        let all: u64 = minutes.values().map(|m| m.0).sum();
        Some((
            all,
            if calls == 0 {
                0.0
            } else {
                lost as f64 / calls as f64
            },
        ))
    }

    fn add_request(&mut self, t: &TraceView<'_>, root: usize, keep_examples: bool) {
        let r = t.spans[root];
        let bad = r.failed();
        let minute = r.start_ms().div_euclid(60_000);
        let entry = t.services[root].clone();
        self.requests += 1;
        self.errors += u64::from(bad);
        let ec = self.entry_counts.entry(entry.clone()).or_default();
        ec.0 += 1;
        ec.1 += u64::from(bad);
        let secs = r.duration_ns() as f64 / 1e9;
        self.entry_latency.entry(entry).or_default().add(secs);
        let m = self.minutes.entry(minute).or_default();
        m.requests += 1;
        m.errors += u64::from(bad);
        m.latency.add(secs);
        for i in t.synchronous(root) {
            let Some(key) = t.key(i) else { continue };
            let ms = t.self_ns(i) as f64 / 1e6;
            *self.self_ms.entry(key.clone()).or_default() += ms;
            *self.spans.entry(key.clone()).or_default() += 1;
            *m.self_ms.entry(key.clone()).or_default() += ms;
            if t.spans[i].failed() {
                *self.failed.entry(key.clone()).or_default() += 1;
            }
            if keep_examples {
                let slow = self.slowest.entry(key.clone()).or_default();
                let ns = t.self_ns(i);
                if slow.len() < EXAMPLES || slow.iter().any(|x| x.0 < ns) {
                    slow.push((ns, t.spans[i].trace_id, t.spans[i].span_id));
                    slow.sort_by_key(|x| std::cmp::Reverse(x.0));
                    slow.truncate(EXAMPLES);
                }
            }
            if let (Key::Node(svc), Some(inst)) = (&key, instance_of(&t.spans[i].resource))
                && matches!(t.spans[i].kind, SpanKind::Server | SpanKind::Internal)
            {
                let ins = self.instances.entry(svc.clone()).or_default();
                ins.key = inst.0;
                let inst = inst.1;
                *ins.requests.entry(inst.to_string()).or_default() += 1;
                *ins.self_ms.entry(inst.to_string()).or_default() += ms;
            }
        }
        if bad {
            let culprit = t.blame(root);
            if let Some(key) = t.key(culprit) {
                *self.blamed.entry(key.clone()).or_default() += 1;
                *m.blamed.entry(key.clone()).or_default() += 1;
                if t.spans[culprit].kind == SpanKind::Client && t.answer(culprit).is_none() {
                    let peer = peer_name(t.spans[culprit]);
                    let pair = (t.caller(culprit, &peer).to_string(), peer);
                    *self.blamed_unanswered.entry(pair).or_default() += 1;
                }
                if let (Key::Node(svc), Some(inst)) =
                    (&key, instance_of(&t.spans[culprit].resource))
                    && t.spans[culprit].kind != SpanKind::Client
                {
                    let ins = self.instances.entry(svc.clone()).or_default();
                    ins.key = inst.0;
                    *ins.blamed.entry(inst.1.to_string()).or_default() += 1;
                }
                if keep_examples {
                    let ex = self.examples.entry(key).or_default();
                    if ex.len() < EXAMPLES {
                        ex.push((t.spans[culprit].trace_id, t.spans[culprit].span_id));
                    }
                }
            }
        }
    }

    /// Self time per entry request of `key`, ms.
    pub fn self_per_request(&self, key: &Key) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.self_ms.get(key).copied().unwrap_or(0.0) / self.requests as f64
    }

    /// Failed entry requests blamed on `key`, per entry request.
    pub fn blamed_per_request(&self, key: &Key) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.blamed.get(key).copied().unwrap_or(0) as f64 / self.requests as f64
    }

    /// Mean self time of one span of `key`, ms.
    pub fn self_per_span(&self, key: &Key) -> Option<f64> {
        let n = *self.spans.get(key)?;
        (n > 0).then(|| self.self_ms.get(key).copied().unwrap_or(0.0) / n as f64)
    }

    /// Mean self time of `svc`'s own (server-side) spans, ms.
    pub fn server_self_per_span(&self, svc: &str) -> Option<f64> {
        let i = self.instances.get(svc)?;
        let n: u64 = i.requests.values().sum();
        (n > 0).then(|| i.self_ms.values().sum::<f64>() / n as f64)
    }

    /// Calls per calling span on (caller, callee).
    pub fn calls_per_visit(&self, caller: &str, callee: &str) -> Option<f64> {
        let &(calls, visits) = self
            .fan_out
            .get(&(caller.to_string(), callee.to_string()))?;
        (visits > 0).then(|| calls as f64 / visits as f64)
    }

    /// Adds `o` (a window of the same shape) into this profile; examples
    /// and minutes are not kept.
    pub fn merge(&mut self, o: &Profile) {
        self.requests += o.requests;
        self.errors += o.errors;
        for (k, v) in &o.entry_latency {
            self.entry_latency.entry(k.clone()).or_default().merge(v);
        }
        for (k, v) in &o.entry_counts {
            let e = self.entry_counts.entry(k.clone()).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        add_all(&mut self.self_ms, &o.self_ms);
        add_all(&mut self.spans, &o.spans);
        add_all(&mut self.blamed, &o.blamed);
        add_all(&mut self.failed, &o.failed);
        add_all(&mut self.blamed_unanswered, &o.blamed_unanswered);
        for (k, v) in &o.peers {
            self.peers.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &o.links {
            self.links.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &o.instances {
            let e = self.instances.entry(k.clone()).or_default();
            if e.key.is_empty() {
                e.key = v.key;
            }
            add_all(&mut e.requests, &v.requests);
            add_all(&mut e.self_ms, &v.self_ms);
            add_all(&mut e.blamed, &v.blamed);
        }
        for (k, v) in &o.fan_out {
            let e = self.fan_out.entry(k.clone()).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        for (k, v) in &o.unanswered {
            let e = self.unanswered.entry(k.clone()).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        for (k, v) in &o.lag {
            self.lag.entry(k.clone()).or_default().merge(v);
        }
        for (svc, vs) in &o.versions {
            let e = self.versions.entry(svc.clone()).or_default();
            for (v, t) in vs {
                let f = e.entry(v.clone()).or_insert(*t);
                *f = (*f).min(*t);
            }
        }
        self.services.extend(o.services.iter().cloned());
        self.serving.extend(o.serving.iter().cloned());
        self.consumes.extend(o.consumes.iter().cloned());
        self.edges.extend(o.edges.iter().cloned());
        self.span_count += o.span_count;
    }
}

fn add_all<K: Clone + Eq + std::hash::Hash, V: Copy + std::ops::AddAssign + Default>(
    into: &mut FxHashMap<K, V>,
    from: &FxHashMap<K, V>,
) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_query::ast::Expr;
    use sextant_query::records::RecordSelector;

    fn client(attrs: &[(&str, &str)]) -> Span {
        Span {
            name: "GET".into(),
            kind: SpanKind::Client,
            attributes: attrs
                .iter()
                .map(|&(k, v)| (k.to_string(), AnyValue::from(v)))
                .collect(),
            ..Span::default()
        }
    }

    /// Whether a peer's matcher, parsed as the query language parses it in
    /// a span selector, takes `value`.
    fn takes(p: &Peer, value: &str) -> bool {
        let q = format!("spans({{{}}})", p.naming.matcher);
        let Ok(Expr::Records { selector, .. }) = sextant_query::parse(&q) else {
            panic!("{q} does not parse")
        };
        let RecordSelector::Spans(sel) = *selector else {
            panic!("{q}")
        };
        sel.first.matchers.iter().all(|m| m.matches(value))
    }

    #[test]
    fn a_peer_is_named_and_selected_by_the_attribute_that_names_it() {
        // Attributes; the peer's name and kind; a value its matcher takes.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, &'a str);
        let cases: [Case<'_>; 11] = [
            (
                &[("db.system", "postgresql"), ("server.address", "ledger-db")],
                "ledger-db",
                "database",
                "ledger-db",
            ),
            (
                &[("url.full", "https://api.fx.example:443/rates?x=1")],
                "api.fx.example",
                "external",
                "https://api.fx.example:443/rates?x=1",
            ),
            (
                &[("db.system", "redis"), ("db.namespace", "sessions")],
                "sessions",
                "database",
                "sessions",
            ),
            (&[("db.system.name", "redis")], "redis", "database", "redis"),
            (
                &[("peer.service", "a\"b\\c")],
                "a\"b\\c",
                "external",
                "a\"b\\c",
            ),
            (&[], "GET (peer)", "external", "GET"),
            (
                &[("http.url", "http://svc:pw@api.fx.example/x")],
                "api.fx.example",
                "external",
                "http://svc:pw@api.fx.example/x",
            ),
            (
                &[("url.full", "http://[fd00::7]:8080/v1")],
                "fd00::7",
                "external",
                "http://[fd00::7]:8080/v1",
            ),
            (
                &[("db.system", "mysql"), ("db.name", "orders")],
                "orders",
                "database",
                "orders",
            ),
            (
                &[
                    ("db.system.name", "postgresql"),
                    ("network.peer.address", "10.0.3.4"),
                ],
                "10.0.3.4",
                "database",
                "10.0.3.4",
            ),
            (
                &[("net.peer.ip", "10.0.3.5")],
                "10.0.3.5",
                "external",
                "10.0.3.5",
            ),
        ];
        for (attrs, name, kind, value) in cases {
            let span = client(attrs);
            let p = peer(&span);
            assert_eq!(
                (peer_name(&span).as_str(), p.kind),
                (name, kind),
                "{attrs:?}"
            );
            assert_eq!(
                p.naming.label.1,
                if p.naming.label.0 == "name" {
                    "GET"
                } else {
                    name
                }
            );
            assert!(takes(&p, value), "{} on {value}", p.naming.matcher);
        }
        // The host is matched whole, as a host, not as a pattern.
        let p = peer(&client(&[("http.url", "http://a.b/x")]));
        assert!(takes(&p, "http://a.b"));
        assert!(!takes(&p, "http://axb/x"));
        assert!(!takes(&p, "http://a.b.evil/x"));
    }
}
