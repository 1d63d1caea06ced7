//! Random estates for the diagnosis scenarios: 15–60 services in layers
//! (entry points call inward, never back), with databases, caches,
//! third-party hosts and topics, named from word lists so no two estates
//! look alike. Unlike the fixed brokerage of [`crate::topology`], these are
//! instrumented strictly by the OpenTelemetry conventions (client and
//! server spans, `db.system.name`, `server.address`, messaging spans), as a
//! real estate is.

use fastrand::Rng;

/// What an uninstrumented peer is.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerKind {
    /// A database: `db.system.name` and `db.namespace`.
    Database {
        /// `postgresql`, `mysql`, `mongodb`.
        system: &'static str,
        /// The database (schema) name.
        namespace: String,
        /// Whether it serves month-end reports (slower at month-ends, as
        /// is normal there).
        reporting: bool,
    },
    /// A cache (`redis`).
    Cache,
    /// A third-party HTTP API.
    External,
    /// A topic, consumed by `consumer`'s operation `op`.
    Topic {
        /// The consuming service.
        consumer: usize,
        /// Its operation handling the messages.
        op: usize,
    },
}

/// A database, cache, third party or topic: known to spans only by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// The name spans give it (`server.address` or the topic).
    pub name: String,
    /// What it is.
    pub kind: PeerKind,
    /// Typical latency of one call, ms.
    pub ms: f64,
}

/// Whom a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An operation of another service.
    Service {
        /// The service.
        svc: usize,
        /// Its operation.
        op: usize,
    },
    /// A peer.
    Peer(usize),
}

/// One call an operation makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The callee.
    pub target: Target,
    /// Probability that a visit makes it.
    pub prob: f64,
}

/// An operation of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Span name (`GET /accounts/{id}` or `Ledger/Post`).
    pub name: String,
    /// HTTP route, for HTTP operations.
    pub route: Option<String>,
    /// Typical own work, ms (children excluded).
    pub self_ms: f64,
    /// Calls made, in order.
    pub calls: Vec<Call>,
}

/// A service of the estate.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `service.name`.
    pub name: String,
    /// `service.namespace` (metrics name the job `namespace/name`).
    pub namespace: String,
    /// Instances (pods).
    pub instances: u32,
    /// Operations.
    pub ops: Vec<Op>,
    /// Layer: 0 for entry points; calls go to higher layers only.
    pub layer: u32,
    /// Speaks gRPC rather than HTTP.
    pub grpc: bool,
}

/// An entry point and its share of the traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// The service.
    pub svc: usize,
    /// The operation.
    pub op: usize,
    /// Fraction of root requests.
    pub share: f64,
}

/// A whole estate.
#[derive(Debug, Clone, PartialEq)]
pub struct Estate {
    /// Services.
    pub services: Vec<Service>,
    /// Peers.
    pub peers: Vec<Peer>,
    /// Entry points.
    pub entries: Vec<Entry>,
    /// Whether database spans use the older `db.system` attribute.
    pub old_db_conventions: bool,
}

const WORDS: &[&str] = &[
    "ledger",
    "pricing",
    "quote",
    "order",
    "risk",
    "account",
    "profile",
    "notify",
    "report",
    "search",
    "catalog",
    "identity",
    "billing",
    "fx",
    "settle",
    "clearing",
    "audit",
    "market",
    "portfolio",
    "statement",
    "margin",
    "kyc",
    "fraud",
    "limits",
    "reference",
    "position",
    "compliance",
    "tax",
    "custody",
    "payment",
    "transfer",
    "rates",
    "ticket",
    "inventory",
    "shipping",
    "cart",
    "checkout",
    "session",
    "feed",
    "alert",
    "routing",
    "booking",
    "loyalty",
    "wallet",
    "invoice",
    "exposure",
    "journal",
    "pnl",
    "signal",
    "document",
];
const SUFFIXES: &[&str] = &[
    "", "-svc", "-api", "-engine", "-service", "-worker", "-core",
];
const NAMESPACES: &[&str] = &["trading", "retail", "core", "platform", "back-office"];
const HOSTS: &[&str] = &[
    "api.paymentsprovider.com",
    "kyc.verifyhub.io",
    "quotes.exchangedata.net",
    "sms.notifyrelay.com",
    "fx.ratesfeed.org",
    "maps.geolocate.dev",
];
const DB_SYSTEMS: &[&str] = &["postgresql", "postgresql", "mysql", "mongodb"];

fn pick<'a>(rng: &mut Rng, v: &[&'a str]) -> &'a str {
    v[rng.usize(0..v.len())]
}

impl Estate {
    /// A random estate of `n` services (clamped to 4..=80), the same for the
    /// same `seed`.
    pub fn random(seed: u64, n: usize) -> Estate {
        let n = n.clamp(4, 80);
        let mut rng = Rng::with_seed(seed);
        let mut names: Vec<String> = Vec::new();
        while names.len() < n {
            let name = format!("{}{}", pick(&mut rng, WORDS), pick(&mut rng, SUFFIXES));
            if !names.contains(&name) {
                names.push(name);
            }
        }
        // Layers: a few entry points, then three inner layers.
        let entries_n = (n / 10).clamp(2, 5);
        let layer_of = |i: usize| -> u32 {
            if i < entries_n {
                0
            } else {
                1 + ((i - entries_n) * 3 / (n - entries_n)) as u32
            }
        };
        let mut services: Vec<Service> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let grpc = layer_of(i) > 0 && rng.bool();
                let ops_n = rng.usize(1..=3);
                let ops = (0..ops_n)
                    .map(|k| {
                        let noun = pick(&mut rng, WORDS);
                        let (op_name, route) = if grpc {
                            let svc_pascal: String = name.split('-').map(capitalise).collect();
                            (format!("{svc_pascal}/Get{}{k}", capitalise(noun)), None)
                        } else {
                            let method = if k % 2 == 0 { "GET" } else { "POST" };
                            let route = format!("/{noun}s/{{id}}");
                            (format!("{method} {route}"), Some(route))
                        };
                        Op {
                            name: op_name,
                            route,
                            self_ms: 0.5 + rng.f64() * 4.0,
                            calls: Vec::new(),
                        }
                    })
                    .collect();
                Service {
                    name: name.clone(),
                    namespace: pick(&mut rng, NAMESPACES).to_string(),
                    instances: rng.u32(2..=4),
                    ops,
                    layer: layer_of(i),
                    grpc,
                }
            })
            .collect();

        // Peers: databases owned by inner services, caches, third parties, topics.
        let mut peers: Vec<Peer> = Vec::new();
        let dbs = (n / 6).clamp(2, 10);
        for k in 0..dbs {
            let system = pick(&mut rng, DB_SYSTEMS);
            let base = format!("{}-db", pick(&mut rng, WORDS));
            let name = if peers.iter().any(|p| p.name == base) {
                format!("{base}-{k}")
            } else {
                base
            };
            peers.push(Peer {
                name: name.clone(),
                kind: PeerKind::Database {
                    system,
                    namespace: name.trim_end_matches("-db").replace('-', "_"),
                    reporting: k == 0,
                },
                ms: 1.0 + rng.f64() * 4.0,
            });
        }
        let caches = (n / 20).clamp(1, 3);
        for k in 0..caches {
            peers.push(Peer {
                name: format!("cache-{k}.redis.internal"),
                kind: PeerKind::Cache,
                ms: 0.2 + rng.f64() * 0.5,
            });
        }
        let externals = (n / 20).clamp(1, 3);
        for h in rng_sample(&mut rng, HOSTS.len(), externals) {
            peers.push(Peer {
                name: HOSTS[h].to_string(),
                kind: PeerKind::External,
                ms: 20.0 + rng.f64() * 60.0,
            });
        }

        // Calls: every inner service is called by at least one operation
        // of a lower layer; then extra calls at random.
        for callee in entries_n..n {
            let layer = services[callee].layer;
            let callers: Vec<usize> = (0..n).filter(|&i| services[i].layer < layer).collect();
            let caller = callers[rng.usize(0..callers.len())];
            let op = rng.usize(0..services[caller].ops.len());
            let callee_op = rng.usize(0..services[callee].ops.len());
            services[caller].ops[op].calls.push(Call {
                target: Target::Service {
                    svc: callee,
                    op: callee_op,
                },
                prob: 0.6 + rng.f64() * 0.4,
            });
        }
        for _ in 0..n / 2 {
            let caller = rng.usize(0..n);
            let layer = services[caller].layer;
            let deeper: Vec<usize> = (0..n).filter(|&i| services[i].layer > layer).collect();
            if deeper.is_empty() {
                continue;
            }
            let callee = deeper[rng.usize(0..deeper.len())];
            let op = rng.usize(0..services[caller].ops.len());
            let callee_op = rng.usize(0..services[callee].ops.len());
            let target = Target::Service {
                svc: callee,
                op: callee_op,
            };
            if services[caller].ops[op]
                .calls
                .iter()
                .all(|c| c.target != target)
            {
                services[caller].ops[op].calls.push(Call {
                    target,
                    prob: 0.3 + rng.f64() * 0.7,
                });
            }
        }
        // Each database has one or two owners in the inner layers; caches
        // and third parties a few callers anywhere past the entry points.
        let inner: Vec<usize> = (entries_n..n).collect();
        for (p, peer) in peers.clone().iter().enumerate() {
            let owners = match peer.kind {
                PeerKind::Database { .. } => rng.usize(1..=2),
                _ => rng.usize(1..=3),
            };
            for _ in 0..owners {
                let svc = inner[rng.usize(0..inner.len())];
                let op = rng.usize(0..services[svc].ops.len());
                let calls = &mut services[svc].ops[op].calls;
                if calls.iter().all(|c| c.target != Target::Peer(p)) {
                    calls.push(Call {
                        target: Target::Peer(p),
                        prob: 0.7 + rng.f64() * 0.3,
                    });
                }
            }
        }
        // Topics: a producer in an inner layer, a consumer deeper or equal.
        let topics = (n / 15).clamp(1, 4);
        for k in 0..topics {
            let producer = inner[rng.usize(0..inner.len())];
            let consumers: Vec<usize> = inner.iter().copied().filter(|&c| c != producer).collect();
            let consumer = consumers[rng.usize(0..consumers.len())];
            let op = rng.usize(0..services[consumer].ops.len());
            let p = peers.len();
            peers.push(Peer {
                name: format!(
                    "{}.{}-events",
                    services[producer].namespace,
                    pick(&mut rng, WORDS)
                ) + &if k > 0 {
                    format!("-{k}")
                } else {
                    String::new()
                },
                kind: PeerKind::Topic { consumer, op },
                ms: 0.5,
            });
            let pop = rng.usize(0..services[producer].ops.len());
            services[producer].ops[pop].calls.push(Call {
                target: Target::Peer(p),
                prob: 0.8,
            });
        }
        let total: usize = services[..entries_n].iter().map(|s| s.ops.len()).sum();
        let entries: Vec<Entry> = services[..entries_n]
            .iter()
            .enumerate()
            .flat_map(|(svc, s)| {
                (0..s.ops.len()).map(move |op| Entry {
                    svc,
                    op,
                    share: 1.0 / total as f64,
                })
            })
            .collect();
        let mut estate = Estate {
            services,
            peers,
            entries,
            old_db_conventions: rng.bool(),
        };
        estate.break_topic_cycles();
        estate
    }

    /// Removes calls to a topic from operations its consumer's handler can
    /// reach, so no message loops forever.
    fn break_topic_cycles(&mut self) {
        for p in 0..self.peers.len() {
            let PeerKind::Topic { consumer, op } = self.peers[p].kind else {
                continue;
            };
            let reach = self.reachable(consumer, op);
            for (svc, op) in reach {
                self.services[svc].ops[op]
                    .calls
                    .retain(|c| c.target != Target::Peer(p));
            }
        }
    }

    /// Operations reachable from (svc, op), itself included.
    pub fn reachable(&self, svc: usize, op: usize) -> Vec<(usize, usize)> {
        let mut seen = vec![(svc, op)];
        let mut i = 0;
        while i < seen.len() {
            let (s, o) = seen[i];
            for c in &self.services[s].ops[o].calls {
                let next = match c.target {
                    Target::Service { svc, op } => Some((svc, op)),
                    Target::Peer(p) => match self.peers[p].kind {
                        PeerKind::Topic { consumer, op } => Some((consumer, op)),
                        _ => None,
                    },
                };
                if let Some(n) = next
                    && !seen.contains(&n)
                {
                    seen.push(n);
                }
            }
            i += 1;
        }
        seen
    }

    /// Index of the service named `name`.
    pub fn service(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Services that call `target` directly.
    pub fn callers(&self, target: Target) -> Vec<usize> {
        (0..self.services.len())
            .filter(|&s| {
                self.services[s].ops.iter().any(|o| {
                    o.calls.iter().any(|c| match (c.target, target) {
                        (Target::Service { svc: a, .. }, Target::Service { svc: b, .. }) => a == b,
                        (a, b) => a == b,
                    })
                })
            })
            .collect()
    }
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next().map_or(String::new(), |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

/// `k` distinct indexes below `n`.
fn rng_sample(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    all.truncate(k.min(n));
    all
}
