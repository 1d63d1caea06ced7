//! The service graph, built from spans by the OpenTelemetry conventions:
//! who calls whom, and how each node and each call is doing (rate, errors,
//! latency). Diagnosis walks it from the failing entry points down to the
//! cause; the UI draws it.
//!
//! - A client span whose child is a server span of another service is a
//!   call between two instrumented services; the caller's view (its
//!   client span) measures the edge, so a callee too slow to answer before
//!   the caller's timeout still shows as slow.
//! - A client span with no server child names an uninstrumented peer: a
//!   database (`db.system`/`db.system.name`, named by `server.address`,
//!   else `db.namespace`, else the system), or an external host
//!   (`server.address`, `peer.service`, the URL's host). Such peers become
//!   nodes, measured by their callers' client spans.
//! - A server span whose parent is a span of another service with no client
//!   span between them (server-only instrumentation) is a call from the
//!   parent's service.
//! - Producer and consumer spans meet at a topic node
//!   (`messaging.destination.name`), so queues stay visible when the
//!   producer's and the consumer's traces are sampled apart.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::Serialize;
use sextant_storage::{AnyValue, Attributes, Span, SpanKind};

use crate::profile::{instance_of, naming_of, peer_name, quoted, topic_of};
use crate::sketch::{LatencySummary, Sketch};

/// What a node of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// An instrumented service (it emits spans of its own).
    Service,
    /// A database or cache known only from its callers' client spans.
    Database,
    /// A third-party or otherwise uninstrumented host.
    External,
    /// A messaging destination (topic, queue).
    Topic,
}

/// Requests, errors and latency of a node or an edge.
#[derive(Debug, Clone, Default)]
pub struct Red {
    /// Requests (spans) seen.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Their durations.
    pub latency: Sketch,
}

impl Red {
    fn add(&mut self, s: &Span, failed: bool) {
        self.requests += 1;
        self.errors += u64::from(failed);
        self.latency.add(s.duration_ns() as f64 / 1e9);
    }

    /// Adds another count.
    pub fn merge(&mut self, o: &Red) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.latency.merge(&o.latency);
    }

    /// Failed fraction of requests (0 with none).
    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    fn view(&self, secs: f64) -> RedView {
        RedView {
            requests: self.requests,
            rate: if secs > 0.0 {
                self.requests as f64 / secs
            } else {
                0.0
            },
            errors: self.errors,
            error_ratio: self.error_ratio(),
            latency: self.latency.summary(),
        }
    }
}

/// [`Red`] as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RedView {
    /// Requests in the window.
    pub requests: u64,
    /// Requests per second over the window (of the sampled spans).
    pub rate: f64,
    /// Failed requests.
    pub errors: u64,
    /// errors / requests.
    pub error_ratio: f64,
    /// Latency quantiles, seconds.
    pub latency: LatencySummary,
}

/// A node of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// The service name, or the peer as spans name it.
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
    /// `db.system` of a database, `messaging.system` of a topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Whether it receives requests from outside the estate (root spans).
    pub entry: bool,
    /// Its own spans (server and consumer side), or its callers' client
    /// spans for an uninstrumented peer.
    pub stats: RedView,
    /// Instances seen (named as [`instance_of`] says).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// The resource attribute naming its instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_key: Option<&'static str>,
    /// `service.version`s seen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// The query language's span matchers for it, as its page charts it:
    /// a service's own work (server spans, and consumer spans when it
    /// handles messages), the client spans calling a peer selected by the
    /// attribute that names it, the producer spans publishing to a topic.
    pub selector: String,
}

/// A call relation between two nodes.
#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    /// The caller (or producer, or topic).
    pub from: String,
    /// The callee (or topic, or consumer).
    pub to: String,
    /// The caller's view of the calls.
    pub stats: RedView,
}

/// The service graph of a window.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceGraph {
    /// Start of the window, ms.
    pub start: i64,
    /// End of the window, ms.
    pub end: i64,
    /// Nodes, by name.
    pub nodes: Vec<Node>,
    /// Edges, by (from, to).
    pub edges: Vec<Edge>,
    /// Spans read.
    pub spans: u64,
    /// Whether the span limit cut the read short (the graph is partial).
    pub truncated: bool,
}

impl ServiceGraph {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The edge from `from` to `to`.
    pub fn edge(&self, from: &str, to: &str) -> Option<&Edge> {
        self.edges.iter().find(|e| e.from == from && e.to == to)
    }
}

#[derive(Debug, Default)]
struct NodeAcc {
    kind: Option<NodeKind>,
    system: Option<String>,
    entry: bool,
    red: Red,
    instances: BTreeSet<String>,
    instance_key: Option<&'static str>,
    versions: BTreeSet<String>,
    /// Whether it has consumer spans (a service).
    consumes: bool,
    /// The matchers of the spans calling it (a peer or a topic), from the
    /// first such span.
    calls: Option<String>,
}

/// Builds a [`ServiceGraph`] from spans given in any order. All spans of a
/// trace that the window holds should be in one call to [`Builder::add`],
/// so calls are matched to their callee's server span.
#[derive(Debug, Default)]
pub struct Builder {
    nodes: FxHashMap<String, NodeAcc>,
    edges: FxHashMap<(String, String), Red>,
    spans: u64,
}

fn attr<'a>(a: &'a Attributes, key: &str) -> Option<&'a AnyValue> {
    a.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn text(a: &Attributes, key: &str) -> Option<String> {
    attr(a, key)
        .map(|v| v.to_text().into_owned())
        .filter(|s| !s.is_empty())
}

impl Builder {
    /// An empty graph.
    pub fn new() -> Builder {
        Builder::default()
    }

    fn node(&mut self, name: &str, kind: NodeKind) -> &mut NodeAcc {
        let n = self.nodes.entry(name.to_string()).or_default();
        // An instrumented service wins over a peer of the same name.
        n.kind = Some(match n.kind {
            Some(k) => k.min(kind),
            None => kind,
        });
        n
    }

    fn edge(&mut self, from: &str, to: &str) -> &mut Red {
        self.edges
            .entry((from.to_string(), to.to_string()))
            .or_default()
    }

    /// Adds a batch of spans (whole traces, ideally).
    pub fn add(&mut self, spans: &[Span]) {
        self.spans += spans.len() as u64;
        let by_id: FxHashMap<(&[u8; 16], &[u8; 8]), usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| ((&s.trace_id, &s.span_id), i))
            .collect();
        let services: Vec<String> = spans.iter().map(|s| s.service().into_owned()).collect();
        // The server span of another service answering each span, if any.
        let mut callee: Vec<Option<usize>> = vec![None; spans.len()];
        for (i, s) in spans.iter().enumerate() {
            if let Some(&p) = by_id.get(&(&s.trace_id, &s.parent_span_id))
                && services[p] != services[i]
                && matches!(s.kind, SpanKind::Server | SpanKind::Consumer)
            {
                callee[p] = Some(i);
            }
        }
        for (i, s) in spans.iter().enumerate() {
            let svc = &services[i];
            let bad = s.failed();
            let parent = by_id.get(&(&s.trace_id, &s.parent_span_id)).copied();
            let is_root = parent.is_none();
            match s.kind {
                SpanKind::Server | SpanKind::Consumer => {
                    let n = self.node(svc, NodeKind::Service);
                    n.red.add(s, bad);
                    n.entry |= is_root;
                    n.consumes |= s.kind == SpanKind::Consumer;
                    if let Some((k, v)) = instance_of(&s.resource) {
                        n.instance_key.get_or_insert(k);
                        n.instances.insert(v.to_string());
                    }
                    if let Some(v) = text(&s.resource, "service.version") {
                        n.versions.insert(v);
                    }
                    if s.kind == SpanKind::Consumer
                        && let Some((_, topic)) = topic_of(&s.attributes)
                    {
                        let system = text(&s.attributes, "messaging.system");
                        let t = self.node(topic, NodeKind::Topic);
                        t.system = t.system.take().or(system);
                        self.edge(topic, svc).add(s, bad);
                    } else if let Some(p) = parent
                        && services[p] != *svc
                        && spans[p].kind != SpanKind::Client
                    {
                        // Only the server side is instrumented.
                        let from = services[p].clone();
                        self.edge(&from, svc).add(s, bad);
                    }
                }
                SpanKind::Client => {
                    if let Some(j) = callee[i] {
                        self.node(svc, NodeKind::Service);
                        let to = services[j].clone();
                        self.edge(svc, &to).add(s, bad);
                    } else {
                        let name = peer_name(s);
                        let system = text(&s.attributes, "db.system.name")
                            .or_else(|| text(&s.attributes, "db.system"));
                        let kind = match system {
                            Some(_) => NodeKind::Database,
                            None => NodeKind::External,
                        };
                        // A datastore reporting its own calls (its spans
                        // carry its name as their service): the caller is
                        // the parent's service, and the datastore is not
                        // made a service by them.
                        let svc = match parent {
                            Some(p) if name == *svc => &services[p],
                            _ => svc,
                        };
                        if name == *svc {
                            continue;
                        }
                        self.node(svc, NodeKind::Service);
                        let n = self.node(&name, kind);
                        n.system = n.system.take().or(system);
                        n.calls.get_or_insert_with(|| {
                            format!("kind=\"client\", {}", naming_of(s).matcher)
                        });
                        if n.kind != Some(NodeKind::Service) {
                            n.red.add(s, bad);
                        }
                        self.edge(svc, &name).add(s, bad);
                    }
                }
                SpanKind::Producer => {
                    self.node(svc, NodeKind::Service);
                    if let Some((key, topic)) = topic_of(&s.attributes) {
                        let system = text(&s.attributes, "messaging.system");
                        let t = self.node(topic, NodeKind::Topic);
                        t.system = t.system.take().or(system);
                        t.calls.get_or_insert_with(|| {
                            format!("kind=\"producer\", {key}=\"{}\"", quoted(topic))
                        });
                        t.red.add(s, bad);
                        self.edge(svc, topic).add(s, bad);
                    }
                }
                SpanKind::Internal | SpanKind::Unspecified => {
                    let n = self.node(svc, NodeKind::Service);
                    if is_root {
                        // An entry point instrumented without a server span.
                        n.entry = true;
                        n.red.add(s, bad);
                    }
                }
            }
        }
    }

    /// The graph of `[start, end]` (ms).
    pub fn finish(self, start: i64, end: i64, truncated: bool) -> ServiceGraph {
        let secs = ((end - start) as f64 / 1000.0).max(0.0);
        let mut nodes: Vec<Node> = self
            .nodes
            .into_iter()
            .map(|(name, n)| {
                let kind = n.kind.unwrap_or(NodeKind::Service);
                let selector = match (kind, n.calls) {
                    (NodeKind::Service, _) | (_, None) => {
                        let kinds = match n.consumes {
                            true => r#"kind=~"server|consumer""#,
                            false => r#"kind="server""#,
                        };
                        format!("service=\"{}\", {kinds}", quoted(&name))
                    }
                    (_, Some(calls)) => calls,
                };
                Node {
                    name,
                    kind,
                    system: n.system,
                    entry: n.entry,
                    stats: n.red.view(secs),
                    instances: n.instances.into_iter().collect(),
                    instance_key: n.instance_key,
                    versions: n.versions.into_iter().collect(),
                    selector,
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut edges: Vec<Edge> = self
            .edges
            .into_iter()
            .map(|((from, to), red)| Edge {
                from,
                to,
                stats: red.view(secs),
            })
            .collect();
        edges.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        ServiceGraph {
            start,
            end,
            nodes,
            edges,
            spans: self.spans,
            truncated,
        }
    }
}
