//! Labelled diagnosis scenarios: a random [`Estate`], a moment in the
//! market's calendar, and either injected faults (the answer a diagnosis
//! must give) or a normal-but-unusual moment (the open, a month-end, an
//! early close, a benign deploy: no incident). `sextant bench diagnose`
//! feeds them to a real server; the diagnosis tests read them directly.
//!
//! Telemetry follows the OpenTelemetry conventions only: client spans in the
//! caller, server spans in the callee, databases and third parties known by
//! `server.address` on client spans, messaging through producer and consumer
//! spans, errors as span status plus logs with the trace's ids.

use fastrand::Rng;
use sextant_calendar::{Calendar, DayKind};
use sextant_storage::{AnyValue, Attributes, LogRecord, Resource, Span, SpanKind, StatusCode};

use crate::estate::{Estate, PeerKind, Target};
use crate::season;
use crate::sim::Batch;

/// What breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A database answers slowly.
    DbLatency,
    /// A service's connection pool to its database is exhausted.
    PoolExhaustion,
    /// A third-party API answers slowly.
    ExternalSlow,
    /// A third-party API times out.
    ExternalTimeout,
    /// A deploy that throws on a share of requests.
    BadDeploy,
    /// A memory leak: GC pauses, then OOM restarts of its instances.
    MemoryLeak,
    /// A service's CPU is saturated: all its work slows.
    CpuSaturation,
    /// One link between two services adds latency (network).
    LinkLatency,
    /// One link between two services drops connections.
    LinkLoss,
    /// One instance of a service fails.
    BadPod,
    /// A consumer falls behind its topic.
    ConsumerLag,
    /// A caller's deploy retries aggressively and overloads its callee.
    RetryStorm,
    /// A cache refuses connections.
    CacheOutage,
    /// A service's TLS certificate expired: its callers cannot connect.
    CertFailure,
}

/// Every fault kind.
pub const FAULT_KINDS: [FaultKind; 14] = [
    FaultKind::DbLatency,
    FaultKind::PoolExhaustion,
    FaultKind::ExternalSlow,
    FaultKind::ExternalTimeout,
    FaultKind::BadDeploy,
    FaultKind::MemoryLeak,
    FaultKind::CpuSaturation,
    FaultKind::LinkLatency,
    FaultKind::LinkLoss,
    FaultKind::BadPod,
    FaultKind::ConsumerLag,
    FaultKind::RetryStorm,
    FaultKind::CacheOutage,
    FaultKind::CertFailure,
];

/// Moments that look unusual but are normal: no incident may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegativeKind {
    /// The 9:30 opening burst.
    OpenBurst,
    /// A month-end afternoon (reporting databases slower, more traffic).
    MonthEnd,
    /// A quarter-end afternoon.
    QuarterEnd,
    /// The open in the week daylight saving time changed.
    DstWeek,
    /// The quiet after an early close.
    EarlyClose,
    /// An exchange holiday.
    Holiday,
    /// A deploy that changes nothing.
    BenignDeploy,
    /// One failed request.
    Blip,
}

/// Every negative kind.
pub const NEGATIVE_KINDS: [NegativeKind; 8] = [
    NegativeKind::OpenBurst,
    NegativeKind::MonthEnd,
    NegativeKind::QuarterEnd,
    NegativeKind::DstWeek,
    NegativeKind::EarlyClose,
    NegativeKind::Holiday,
    NegativeKind::BenignDeploy,
    NegativeKind::Blip,
];

/// Where a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// A whole service.
    Service(usize),
    /// One instance of a service.
    Instance(usize, u32),
    /// A database, cache, third party or topic.
    Peer(usize),
    /// Calls from the first service to the second.
    Link(usize, usize),
}

/// An injected fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// What breaks.
    pub kind: FaultKind,
    /// Where.
    pub at: Component,
    /// From when, ms.
    pub start_ms: i64,
}

/// The answer a diagnosis should give for one root cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The cause's name: a service, an instance id, a peer as spans name
    /// it, or `caller->callee` for a link.
    pub name: String,
    /// `service`, `instance`, `database`, `external` or `link`.
    pub kind: &'static str,
    /// The service it belongs to, or its direct caller.
    pub service: String,
    /// Words of the log messages the fault writes, `|` between
    /// alternatives (evidence check).
    pub log_words: String,
}

/// One labelled scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// A short description (`db-latency ledger-db at 10:42`).
    pub label: String,
    /// Seed of everything random in it.
    pub seed: u64,
    /// The estate.
    pub estate: Estate,
    /// Root requests per second at normal load.
    pub rate: f64,
    /// Faults (empty for a negative).
    pub faults: Vec<Fault>,
    /// The negative kind, for a scenario without fault.
    pub negative: Option<NegativeKind>,
    /// Deploys: (service, when ms, new version).
    pub deploys: Vec<(usize, i64, String)>,
    /// One request failing at its entry point at this time, ms.
    pub blip: Option<i64>,
    /// The window to diagnose, ms.
    pub window: (i64, i64),
    /// The answers, one per fault.
    pub expected: Vec<Expected>,
}

const MIN_MS: i64 = 60_000;
/// Length of the diagnosed window.
pub const WINDOW_MS: i64 = 15 * MIN_MS;
/// History windows hold this share of traces (head sampling).
pub const HISTORY_SAMPLE: f64 = 0.3;

fn kind_name(k: FaultKind) -> &'static str {
    match k {
        FaultKind::DbLatency => "db-latency",
        FaultKind::PoolExhaustion => "pool-exhaustion",
        FaultKind::ExternalSlow => "external-slow",
        FaultKind::ExternalTimeout => "external-timeout",
        FaultKind::BadDeploy => "bad-deploy",
        FaultKind::MemoryLeak => "memory-leak",
        FaultKind::CpuSaturation => "cpu-saturation",
        FaultKind::LinkLatency => "link-latency",
        FaultKind::LinkLoss => "link-loss",
        FaultKind::BadPod => "bad-pod",
        FaultKind::ConsumerLag => "consumer-lag",
        FaultKind::RetryStorm => "retry-storm",
        FaultKind::CacheOutage => "cache-outage",
        FaultKind::CertFailure => "cert-failure",
    }
}

fn negative_name(k: NegativeKind) -> &'static str {
    match k {
        NegativeKind::OpenBurst => "open-burst",
        NegativeKind::MonthEnd => "month-end",
        NegativeKind::QuarterEnd => "quarter-end",
        NegativeKind::DstWeek => "dst-week",
        NegativeKind::EarlyClose => "early-close",
        NegativeKind::Holiday => "holiday",
        NegativeKind::BenignDeploy => "benign-deploy",
        NegativeKind::Blip => "blip",
    }
}

/// Local New York wall time as UTC ms.
fn ny(y: i16, m: i8, d: i8, hh: i8, mm: i8) -> i64 {
    let dt = jiff::civil::date(y, m, d).at(hh, mm, 0, 0);
    jiff::tz::TimeZone::get("America/New_York")
        .and_then(|tz| tz.to_timestamp(dt))
        .map_or(0, |t| t.as_millisecond())
}

/// A regular trading day in October–November 2026 picked by `rng`.
fn trading_day(rng: &mut Rng) -> (i16, i8, i8) {
    let cal = season::nyse();
    loop {
        let m = rng.i8(10..=11);
        let d = rng.i8(2..=27);
        let date = jiff::civil::date(2026, m, d);
        if cal.day(date).kind() == DayKind::Trading {
            return (2026, m, d);
        }
    }
}

/// Expected visits per root request of each service and peer, and
/// database calls per root request of each service, to put faults where
/// traffic flows.
fn traffic(e: &Estate) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut svc = vec![0.0; e.services.len()];
    let mut peer = vec![0.0; e.peers.len()];
    // Calls form a DAG of bounded depth: recomputing visits from the entry
    // points a few times reaches the fixed point.
    let mut visits: Vec<Vec<f64>> = e.services.iter().map(|s| vec![0.0; s.ops.len()]).collect();
    for _ in 0..10 {
        let mut next: Vec<Vec<f64>> = e.services.iter().map(|s| vec![0.0; s.ops.len()]).collect();
        for en in &e.entries {
            next[en.svc][en.op] += en.share;
        }
        for (s, ops) in visits.iter().enumerate() {
            for (o, v) in ops.iter().enumerate() {
                for c in &e.services[s].ops[o].calls {
                    let to = match c.target {
                        Target::Service { svc, op } => Some((svc, op)),
                        Target::Peer(p) => match e.peers[p].kind {
                            PeerKind::Topic { consumer, op } => Some((consumer, op)),
                            _ => None,
                        },
                    };
                    if let Some((ts, to)) = to {
                        next[ts][to] += v * c.prob;
                    }
                }
            }
        }
        visits = next;
    }
    let mut db_calls = vec![0.0; e.services.len()];
    for (s, ops) in visits.iter().enumerate() {
        svc[s] = ops.iter().sum();
        for (o, v) in ops.iter().enumerate() {
            for c in &e.services[s].ops[o].calls {
                if let Target::Peer(p) = c.target {
                    peer[p] += v * c.prob;
                    if matches!(e.peers[p].kind, PeerKind::Database { .. }) {
                        db_calls[s] += v * c.prob;
                    }
                }
            }
        }
    }
    (svc, peer, db_calls)
}

/// The busiest of `candidates` by `weight`, among the top few, at random.
fn busy(rng: &mut Rng, candidates: Vec<usize>, weight: &[f64]) -> Option<usize> {
    // A component that few requests reach would not show at all.
    let mut c: Vec<usize> = candidates
        .into_iter()
        .filter(|&i| weight[i] > 0.02)
        .collect();
    c.sort_by(|a, b| weight[*b].total_cmp(&weight[*a]));
    c.truncate(3);
    (!c.is_empty()).then(|| c[rng.usize(0..c.len())])
}

impl Scenario {
    /// A scenario with one fault of `kind` (two faults when `second` is
    /// given), at a random time of a trading day, during the open when
    /// `at_open`.
    pub fn fault(
        seed: u64,
        services: usize,
        kind: FaultKind,
        second: Option<FaultKind>,
        at_open: bool,
    ) -> Scenario {
        let mut rng = Rng::with_seed(seed);
        let (y, m, d) = trading_day(&mut rng);
        let onset = if at_open {
            ny(y, m, d, 9, 31)
        } else {
            ny(y, m, d, rng.i8(10..=15), rng.i8(0..=59))
        };
        let mut sc = Scenario::fault_at(seed, services, &[kind], onset, 4.0, &mut rng);
        if let Some(k) = second
            && let Some(label) = sc.inject(&mut rng, k, onset)
        {
            sc.label = format!("{} + {label}", sc.label);
        }
        sc.label = format!("{} on 2026-{m:02}-{d:02}", sc.label);
        sc
    }

    /// A scenario with faults of `kinds` starting at `onset` (ms), `rate`
    /// root requests per second at normal load; its window is the five
    /// minutes before the onset and the ten after.
    pub fn fault_at(
        seed: u64,
        services: usize,
        kinds: &[FaultKind],
        onset: i64,
        rate: f64,
        rng: &mut Rng,
    ) -> Scenario {
        let mut sc = Scenario {
            label: String::new(),
            seed,
            rate,
            faults: Vec::new(),
            negative: None,
            deploys: Vec::new(),
            blip: None,
            window: (onset - 5 * MIN_MS, onset - 5 * MIN_MS + WINDOW_MS),
            expected: Vec::new(),
            estate: Estate::random(seed, services),
        };
        let labels: Vec<String> = kinds
            .iter()
            .filter_map(|&k| sc.inject(rng, k, onset))
            .collect();
        sc.label = labels.join(" + ");
        sc
    }

    /// A scenario with no fault, at a moment of `kind`.
    pub fn negative(seed: u64, services: usize, kind: NegativeKind) -> Scenario {
        let mut rng = Rng::with_seed(seed);
        let estate = Estate::random(seed, services);
        let (y, m, d) = trading_day(&mut rng);
        let start = match kind {
            NegativeKind::OpenBurst => ny(y, m, d, 9, 25),
            NegativeKind::MonthEnd => ny(2026, 10, 30, 14, rng.i8(0..=30)),
            NegativeKind::QuarterEnd => ny(2026, 9, 30, 14, rng.i8(0..=30)),
            // Daylight saving time ended on 1 November 2026.
            NegativeKind::DstWeek => ny(2026, 11, 3, 9, 25),
            NegativeKind::EarlyClose => ny(2026, 11, 27, 12, 55),
            NegativeKind::Holiday => ny(2026, 11, 26, 11, 0),
            NegativeKind::BenignDeploy | NegativeKind::Blip => {
                ny(y, m, d, rng.i8(10..=15), rng.i8(0..=40))
            }
        };
        let mut sc = Scenario {
            label: negative_name(kind).to_string(),
            seed,
            rate: 4.0,
            faults: Vec::new(),
            negative: Some(kind),
            deploys: Vec::new(),
            blip: None,
            window: (start, start + WINDOW_MS),
            expected: Vec::new(),
            estate,
        };
        let n = sc.estate.services.len();
        match kind {
            NegativeKind::BenignDeploy => {
                let svc = rng.usize(0..n);
                sc.deploys
                    .push((svc, start + 5 * MIN_MS, "2.0.0".to_string()));
                sc.label = format!("benign-deploy {}", sc.estate.services[svc].name);
            }
            NegativeKind::Blip => sc.blip = Some(start + 7 * MIN_MS),
            _ => {}
        }
        sc
    }

    /// A labelled suite of `n` scenarios: two faults in three (every kind in
    /// turn, some concurrent, some at the open), one negative in three.
    pub fn suite(seed: u64, n: usize) -> Vec<Scenario> {
        let mut rng = Rng::with_seed(seed);
        let (mut faults, mut negatives) = (0usize, 0usize);
        (0..n)
            .map(|i| {
                let s = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                let services = rng.usize(15..=60);
                if i % 3 == 2 {
                    let k = NEGATIVE_KINDS[negatives % NEGATIVE_KINDS.len()];
                    negatives += 1;
                    Scenario::negative(s, services, k)
                } else {
                    let k = FAULT_KINDS[faults % FAULT_KINDS.len()];
                    let second = (faults % 7 == 6)
                        .then(|| FAULT_KINDS[(faults * 5 + 3) % FAULT_KINDS.len()])
                        .filter(|&k2| k2 != k);
                    let at_open = faults % 5 == 4;
                    faults += 1;
                    // Not every estate has a busy component of every kind
                    // (a topic, a third party): draw another until it does.
                    let mut s = s;
                    loop {
                        let sc = Scenario::fault(s, services, k, second, at_open);
                        if sc.faults.len() == 1 + usize::from(second.is_some()) {
                            break sc;
                        }
                        s = s.wrapping_add(7919);
                    }
                }
            })
            .collect()
    }

    /// Places a fault of `kind` where traffic flows; returns its label.
    fn inject(&mut self, rng: &mut Rng, kind: FaultKind, onset: i64) -> Option<String> {
        let e = &self.estate;
        let (svc_w, peer_w, db_w) = traffic(e);
        let inner: Vec<usize> = (0..e.services.len())
            .filter(|&s| e.services[s].layer > 0)
            .collect();
        let peers_of = |f: &dyn Fn(&PeerKind) -> bool| -> Vec<usize> {
            (0..e.peers.len())
                .filter(|&p| f(&e.peers[p].kind))
                .collect()
        };
        let owner = |p: usize| -> usize {
            let callers = e.callers(Target::Peer(p));
            callers
                .iter()
                .copied()
                .max_by(|a, b| svc_w[*a].total_cmp(&svc_w[*b]))
                .unwrap_or(0)
        };
        // A busy call between two services.
        let link = |rng: &mut Rng| -> Option<(usize, usize)> {
            let mut links: Vec<(usize, usize, f64)> = Vec::new();
            for (s, svc) in e.services.iter().enumerate() {
                for op in &svc.ops {
                    for c in &op.calls {
                        if let Target::Service { svc: t, .. } = c.target
                            && !links.iter().any(|l| l.0 == s && l.1 == t)
                        {
                            links.push((s, t, svc_w[s].min(svc_w[t])));
                        }
                    }
                }
            }
            links.sort_by(|a, b| b.2.total_cmp(&a.2));
            links.truncate(3);
            (!links.is_empty()).then(|| {
                let l = links[rng.usize(0..links.len())];
                (l.0, l.1)
            })
        };
        let name = |s: usize| e.services[s].name.clone();
        let (at, expected) = match kind {
            FaultKind::DbLatency => {
                let p = busy(
                    rng,
                    peers_of(&|k| matches!(k, PeerKind::Database { .. })),
                    &peer_w,
                )?;
                (
                    Component::Peer(p),
                    (
                        e.peers[p].name.clone(),
                        "database",
                        name(owner(p)),
                        "slow query|timed out",
                    ),
                )
            }
            FaultKind::CacheOutage => {
                let p = busy(rng, peers_of(&|k| *k == PeerKind::Cache), &peer_w)?;
                (
                    Component::Peer(p),
                    (
                        e.peers[p].name.clone(),
                        "database",
                        name(owner(p)),
                        "connection refused",
                    ),
                )
            }
            FaultKind::ExternalSlow | FaultKind::ExternalTimeout => {
                let p = busy(rng, peers_of(&|k| *k == PeerKind::External), &peer_w)?;
                let words = if kind == FaultKind::ExternalSlow {
                    "slow response"
                } else {
                    "deadline exceeded"
                };
                (
                    Component::Peer(p),
                    (e.peers[p].name.clone(), "external", name(owner(p)), words),
                )
            }
            FaultKind::PoolExhaustion => {
                // A service that calls a database on its busy paths.
                let users: Vec<usize> = inner.iter().copied().filter(|&s| db_w[s] > 0.02).collect();
                let s = busy(rng, users, &db_w)?;
                (
                    Component::Service(s),
                    (name(s), "service", name(s), "connection pool exhausted"),
                )
            }
            FaultKind::BadDeploy | FaultKind::MemoryLeak | FaultKind::CpuSaturation => {
                let s = busy(rng, inner.clone(), &svc_w)?;
                let words = match kind {
                    FaultKind::BadDeploy => "unhandled exception",
                    FaultKind::MemoryLeak => "OutOfMemoryError",
                    _ => "processing slow",
                };
                (Component::Service(s), (name(s), "service", name(s), words))
            }
            FaultKind::CertFailure => {
                let s = busy(rng, inner.clone(), &svc_w)?;
                (
                    Component::Service(s),
                    (name(s), "service", name(s), "certificate has expired"),
                )
            }
            FaultKind::BadPod => {
                let s = busy(rng, inner.clone(), &svc_w)?;
                let i = rng.u32(0..e.services[s].instances);
                (
                    Component::Instance(s, i),
                    (
                        format!("{}-{i}", name(s)),
                        "instance",
                        name(s),
                        "unhandled exception",
                    ),
                )
            }
            FaultKind::ConsumerLag => {
                let topics = peers_of(&|k| matches!(k, PeerKind::Topic { .. }));
                let p = busy(rng, topics, &peer_w)?;
                let PeerKind::Topic { consumer, .. } = e.peers[p].kind else {
                    return None;
                };
                (
                    Component::Service(consumer),
                    (name(consumer), "service", name(consumer), "consumer lag"),
                )
            }
            FaultKind::LinkLatency | FaultKind::LinkLoss => {
                let (a, b) = link(rng)?;
                let words = if kind == FaultKind::LinkLoss {
                    "connection reset by peer"
                } else {
                    "slow response"
                };
                (
                    Component::Link(a, b),
                    (format!("{}->{}", name(a), name(b)), "link", name(a), words),
                )
            }
            FaultKind::RetryStorm => {
                let (a, b) = link(rng)?;
                (
                    Component::Link(a, b),
                    (name(a), "service", name(a), "retrying call"),
                )
            }
        };
        if matches!(kind, FaultKind::BadDeploy | FaultKind::RetryStorm) {
            let svc = match at {
                Component::Service(s) | Component::Link(s, _) | Component::Instance(s, _) => s,
                Component::Peer(_) => 0,
            };
            self.deploys.push((svc, onset, "2.0.0".to_string()));
        }
        self.faults.push(Fault {
            kind,
            at,
            start_ms: onset,
        });
        let (name, k, service, words) = expected;
        self.expected.push(Expected {
            name: name.clone(),
            kind: k,
            service,
            log_words: words.to_string(),
        });
        Some(format!("{} {name}", kind_name(kind)))
    }

    /// The time ranges to feed and the share of traces each keeps: the
    /// comparable moments the calendar finds for the window (sampled, as
    /// history usually is), half an hour before it, and the window itself
    /// (every trace).
    pub fn ranges(&self) -> Vec<(i64, i64, f64)> {
        let cal = season::nyse();
        let len = self.window.1 - self.window.0;
        let mut v: Vec<(i64, i64, f64)> = history_starts(cal, self.window.0)
            .into_iter()
            .map(|c| (c, c + len, HISTORY_SAMPLE))
            .collect();
        v.push((self.window.0 - 30 * MIN_MS, self.window.0, HISTORY_SAMPLE));
        v.push((self.window.0, self.window.1, 1.0));
        v
    }

    /// Spans and logs of `[from, to)` (ms), keeping `sample` of the traces
    /// and every log record.
    /// The same scenario and range always give the same data.
    pub fn generate(&self, from: i64, to: i64, sample: f64) -> Batch {
        let mut g = Gen {
            sc: self,
            rng: Rng::new(),
            batch: Batch::default(),
            trace: [0; 16],
            now: 0,
        };
        let mut sec = from.div_euclid(1000);
        while sec * 1000 < to {
            let t0 = sec * 1000;
            g.rng = Rng::with_seed(self.seed ^ (sec as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let want = self.rate * season::load(t0);
            let n = want.floor() as usize + usize::from(g.rng.f64() < want.fract());
            for k in 0..n {
                let t = t0 + (k as i64 * 1000) / (n as i64);
                if t < from || t >= to {
                    continue;
                }
                // Head sampling keeps a share of the traces; logs are
                // kept whole, as collectors do.
                let keep = g.rng.f64() < sample;
                let blip = k == 0 && self.blip.is_some_and(|b| b.div_euclid(1000) == sec);
                let spans_before = g.batch.spans.len();
                g.request(t, blip);
                if !keep && !blip {
                    g.batch.spans.truncate(spans_before);
                }
            }
            sec += 1;
        }
        g.batch
    }
}

/// Comparable moments for a window starting at `start`, as the diagnosis
/// reads its baseline.
pub fn history_starts(cal: &Calendar, start: i64) -> Vec<i64> {
    cal.comparable(start, 35, 6)
}

/// The generator of one range.
struct Gen<'a> {
    sc: &'a Scenario,
    rng: Rng,
    batch: Batch,
    trace: [u8; 16],
    now: i64,
}

/// How a call ended.
#[derive(Debug, Clone)]
struct Outcome {
    end_ns: i64,
    /// The failure's message, if it failed.
    error: Option<String>,
    /// The HTTP status a server answered (0: no answer).
    status: u16,
}

/// One server-side visit of an operation.
#[derive(Debug, Clone, Copy)]
struct Visit {
    svc: usize,
    op: usize,
    parent: [u8; 8],
    start_ns: i64,
    depth: u32,
    /// The topic whose message this visit handles (a consumer span).
    topic: Option<usize>,
    /// Whether this request is the scenario's one failing request.
    blip: bool,
}

const CALL_TIMEOUT_MS: f64 = 2_000.0;
const DB_TIMEOUT_MS: f64 = 1_000.0;
const EXTERNAL_TIMEOUT_MS: f64 = 3_000.0;

impl Gen<'_> {
    fn fault(&self, kind: FaultKind, at: impl Fn(Component) -> bool) -> Option<f64> {
        self.sc
            .faults
            .iter()
            .find(|f| f.kind == kind && at(f.at) && self.now >= f.start_ms)
            .map(|f| ((self.now - f.start_ms) as f64 / 60_000.0).max(0.0))
    }

    fn version(&self, svc: usize) -> String {
        self.sc
            .deploys
            .iter()
            .filter(|(s, t, _)| *s == svc && self.now >= *t)
            .map(|(_, _, v)| v.clone())
            .next_back()
            .unwrap_or_else(|| format!("1.{}.{}", 3 + svc % 5, svc % 11))
    }

    fn resource(&self, svc: usize, inst: u32) -> Resource {
        let s = &self.sc.estate.services[svc];
        Resource::new(vec![
            ("service.name".into(), AnyValue::Str(s.name.clone())),
            (
                "service.namespace".into(),
                AnyValue::Str(s.namespace.clone()),
            ),
            (
                "service.instance.id".into(),
                AnyValue::Str(format!("{}-{inst}", s.name)),
            ),
            ("service.version".into(), AnyValue::Str(self.version(svc))),
            ("deployment.environment.name".into(), "production".into()),
        ])
    }

    fn span_id(&mut self) -> [u8; 8] {
        let mut id = [0u8; 8];
        self.rng.fill(&mut id);
        id[0] |= 1;
        id
    }

    /// Lognormal-ish jitter around 1.
    fn jitter(&mut self) -> f64 {
        let u = self.rng.f64().max(1e-9);
        let v = self.rng.f64();
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        (0.3 * z).exp()
    }

    /// Records a span of `svc`'s instance `inst`: (span id, parent id),
    /// (name, kind), (start, end) in ns, failed with `error` if given.
    fn push_span(
        &mut self,
        (svc, inst): (usize, u32),
        (span_id, parent): ([u8; 8], [u8; 8]),
        (name, kind): (String, SpanKind),
        (start_ns, end_ns): (i64, i64),
        error: Option<&String>,
        attributes: Attributes,
    ) {
        let resource = self.resource(svc, inst);
        self.batch.spans.push(Span {
            trace_id: self.trace,
            span_id,
            parent_span_id: parent,
            name,
            kind,
            start_ns,
            end_ns,
            status: if error.is_some() {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            status_message: error.cloned().unwrap_or_default(),
            attributes,
            resource,
            ..Span::default()
        });
    }

    fn log(&mut self, svc: usize, inst: u32, span: [u8; 8], t_ns: i64, severity: u8, body: String) {
        let resource = self.resource(svc, inst);
        self.batch.logs.push(LogRecord {
            time_ns: t_ns,
            observed_ns: t_ns,
            severity,
            severity_text: if severity >= 17 { "ERROR" } else { "WARN" }.into(),
            body: AnyValue::Str(body),
            attributes: Vec::new(),
            resource,
            trace_id: self.trace,
            span_id: span,
            flags: 1,
        });
    }

    fn request(&mut self, t_ms: i64, blip: bool) {
        self.now = t_ms;
        self.rng.fill(&mut self.trace);
        self.trace[0] |= 1;
        let shares: Vec<f64> = self.sc.estate.entries.iter().map(|e| e.share).collect();
        let mut x = self.rng.f64();
        let mut pick = 0;
        for (i, s) in shares.iter().enumerate() {
            if x < *s {
                pick = i;
                break;
            }
            x -= s;
            pick = i;
        }
        let e = self.sc.estate.entries[pick];
        let start_ns = t_ms * 1_000_000 + self.rng.i64(0..1_000_000);
        self.serve(Visit {
            svc: e.svc,
            op: e.op,
            parent: [0; 8],
            start_ns,
            depth: 0,
            topic: None,
            blip,
        });
    }

    /// The server side of a call to `svc`'s operation `op`.
    fn serve(&mut self, v: Visit) -> Outcome {
        let Visit {
            svc,
            op,
            parent,
            start_ns,
            depth,
            topic,
            blip,
        } = v;
        let sc = self.sc;
        let s = &sc.estate.services[svc];
        let o = &s.ops[op];
        let span_id = self.span_id();
        let inst = self.rng.u32(0..s.instances);
        let load = season::load(self.now);
        let mut self_ms = o.self_ms * self.jitter() * (1.0 + 0.25 * (load - 1.0).max(0.0));
        let mut own_error: Option<(String, u16)> = None;
        let is = |c: Component| c == Component::Service(svc);
        if let Some(m) = self.fault(FaultKind::CpuSaturation, is) {
            self_ms *= 3.0 + m.min(5.0);
            if self.rng.f64() < 0.3 {
                let ms = self_ms as i64;
                self.log(
                    svc,
                    inst,
                    span_id,
                    start_ns,
                    13,
                    format!("request processing slow: {ms}ms (threshold 500ms), cpu throttled"),
                );
            }
        }
        if let Some(m) = self.fault(FaultKind::MemoryLeak, is) {
            self_ms *= 1.5 + m / 3.0;
            if self.rng.f64() < 0.05 + m / 60.0 {
                own_error = Some(("java.lang.OutOfMemoryError: Java heap space".into(), 500));
            }
        }
        if self.fault(FaultKind::BadDeploy, is).is_some() && self.rng.f64() < 0.35 {
            own_error = Some((
                format!(
                    "unhandled exception in {}: index out of range [5] with length 5",
                    o.name
                ),
                500,
            ));
        }
        if self
            .fault(FaultKind::BadPod, |c| c == Component::Instance(svc, inst))
            .is_some()
        {
            self_ms *= 4.0;
            if self.rng.f64() < 0.6 {
                own_error = Some((
                    format!("unhandled exception in {}: nil pointer dereference", o.name),
                    500,
                ));
            }
        }
        if let Some(m) = self.fault(FaultKind::ConsumerLag, is) {
            self_ms *= 8.0 + m;
        }
        // A callee overloaded by a caller's retries.
        let overloaded = sc.faults.iter().any(|f| {
            f.kind == FaultKind::RetryStorm
                && matches!(f.at, Component::Link(_, b) if b == svc)
                && self.now >= f.start_ms
        });
        if overloaded {
            self_ms *= 3.0;
            if self.rng.f64() < 0.25 {
                own_error = Some((
                    "rejecting request: server overloaded (queue=512)".into(),
                    503,
                ));
            }
        }
        if blip && depth == 0 {
            own_error = Some(("request aborted: client closed connection".into(), 500));
        }

        let mut t = start_ns + (self_ms * 0.3 * 1e6) as i64;
        let mut child_error: Option<String> = None;
        if depth < 12 {
            for c in o.calls.clone() {
                if self.rng.f64() >= c.prob {
                    continue;
                }
                let out = match c.target {
                    Target::Service { svc: to, op: to_op } => {
                        self.call_service(svc, inst, span_id, (to, to_op), t, depth)
                    }
                    Target::Peer(p) => self.call_peer(svc, inst, span_id, p, t, depth),
                };
                t = out.end_ns;
                if out.error.is_some() && child_error.is_none() {
                    let who = match c.target {
                        Target::Service { svc: to, .. } => &sc.estate.services[to].name,
                        Target::Peer(p) => &sc.estate.peers[p].name,
                    };
                    child_error = Some(format!("call to {who} failed"));
                }
            }
        }
        let end_ns = t + (self_ms * 0.7 * 1e6) as i64;
        let propagated = child_error.is_some() && self.rng.f64() < 0.85;
        let (error, status) = match (&own_error, &child_error) {
            (Some((m, code)), _) => (Some(m.clone()), *code),
            (None, Some(who)) if propagated => (Some(format!("request failed: {who}")), 502),
            _ => (None, 200),
        };
        if let Some(m) = &error {
            self.log(svc, inst, span_id, end_ns, 17, m.clone());
        }
        // Background noise every service writes now and then.
        if self.rng.f64() < 0.004 {
            let ms = 300 + self.rng.u32(0..900);
            self.log(
                svc,
                inst,
                span_id,
                end_ns,
                13,
                format!("slow request: {ms}ms on {}", o.name),
            );
        }
        let mut attributes: Attributes = Vec::new();
        let (kind, name) = match topic {
            Some(p) => {
                attributes.push(("messaging.system".into(), "kafka".into()));
                attributes.push((
                    "messaging.destination.name".into(),
                    AnyValue::Str(sc.estate.peers[p].name.clone()),
                ));
                attributes.push(("messaging.operation.type".into(), "process".into()));
                (SpanKind::Consumer, format!("process {}", o.name))
            }
            None if s.grpc => {
                attributes.push(("rpc.system".into(), "grpc".into()));
                attributes.push(("rpc.method".into(), AnyValue::Str(o.name.clone())));
                attributes.push((
                    "rpc.grpc.status_code".into(),
                    AnyValue::Int(match status {
                        200 => 0,
                        503 => 14,
                        _ => 13,
                    }),
                ));
                (SpanKind::Server, o.name.clone())
            }
            None => {
                let (method, _) = o.name.split_once(' ').unwrap_or(("GET", ""));
                attributes.push(("http.request.method".into(), AnyValue::Str(method.into())));
                if let Some(r) = &o.route {
                    attributes.push(("http.route".into(), AnyValue::Str(r.clone())));
                }
                attributes.push((
                    "http.response.status_code".into(),
                    AnyValue::Int(i64::from(status)),
                ));
                (SpanKind::Server, o.name.clone())
            }
        };
        self.push_span(
            (svc, inst),
            (span_id, parent),
            (name, kind),
            (start_ns, end_ns),
            error.as_ref(),
            attributes,
        );
        Outcome {
            end_ns,
            error,
            status,
        }
    }

    /// A call from `from`'s instance `inst` to `to`'s operation: the
    /// client span (one per attempt), and the callee's server side unless
    /// the connection fails first.
    fn call_service(
        &mut self,
        from: usize,
        inst: u32,
        parent: [u8; 8],
        (to, to_op): (usize, usize),
        start_ns: i64,
        depth: u32,
    ) -> Outcome {
        let sc = self.sc;
        let callee = &sc.estate.services[to];
        let client_id = self.span_id();
        let link = Component::Link(from, to);
        let retries = sc
            .faults
            .iter()
            .any(|f| f.kind == FaultKind::RetryStorm && f.at == link && self.now >= f.start_ms);
        let attempts = if retries { 4 } else { 1 };
        let mut t = start_ns;
        let mut last = Outcome {
            end_ns: t,
            error: None,
            status: 200,
        };
        for attempt in 0..attempts {
            let span_id = if attempt == 0 {
                client_id
            } else {
                self.span_id()
            };
            let net_ms = 0.3 + 0.2 * self.rng.f64();
            let mut extra_ms = 0.0;
            if self.fault(FaultKind::LinkLatency, |c| c == link).is_some() {
                extra_ms += 250.0 + 250.0 * self.rng.f64();
            }
            let refused: Option<String> = if self
                .fault(FaultKind::CertFailure, |c| c == Component::Service(to))
                .is_some()
            {
                Some(format!(
                    "tls: failed to verify certificate: x509: certificate has expired or is not yet valid (dialing {}:8443)",
                    callee.name
                ))
            } else if self.fault(FaultKind::LinkLoss, |c| c == link).is_some()
                && self.rng.f64() < 0.4
            {
                Some(format!(
                    "read tcp 10.0.{}.{}:41822->10.0.{}.{}:8080: connection reset by peer",
                    from % 250,
                    inst + 10,
                    to % 250,
                    self.rng.u8(10..200)
                ))
            } else if let Some(m) =
                self.fault(FaultKind::MemoryLeak, |c| c == Component::Service(to))
                && self.rng.f64() < (m / 40.0).min(0.3)
            {
                Some(format!(
                    "dial tcp {}:8080: connect: connection refused",
                    callee.name
                ))
            } else {
                None
            };
            let server_start = t + ((net_ms + extra_ms / 2.0) * 1e6) as i64;
            let (end_ns, error, status) = match refused {
                Some(msg) => (
                    t + ((2.0 + 3.0 * self.rng.f64()) * 1e6) as i64,
                    Some(msg),
                    0,
                ),
                None => {
                    let out = self.serve(Visit {
                        svc: to,
                        op: to_op,
                        parent: span_id,
                        start_ns: server_start,
                        depth: depth + 1,
                        topic: None,
                        blip: false,
                    });
                    let natural = out.end_ns + ((net_ms + extra_ms / 2.0) * 1e6) as i64;
                    let deadline = t + (CALL_TIMEOUT_MS * 1e6) as i64;
                    if natural > deadline {
                        (
                            deadline,
                            Some(format!(
                                "call to {} failed: context deadline exceeded after {}ms",
                                callee.name, CALL_TIMEOUT_MS as i64
                            )),
                            0,
                        )
                    } else {
                        (natural, out.error, out.status)
                    }
                }
            };
            let mut attributes: Attributes = vec![
                ("server.address".into(), AnyValue::Str(callee.name.clone())),
                ("server.port".into(), AnyValue::Int(8080)),
            ];
            if callee.grpc {
                attributes.push(("rpc.system".into(), "grpc".into()));
                attributes.push((
                    "rpc.method".into(),
                    AnyValue::Str(callee.ops[to_op].name.clone()),
                ));
            } else {
                let (method, _) = callee.ops[to_op]
                    .name
                    .split_once(' ')
                    .unwrap_or(("GET", ""));
                attributes.push(("http.request.method".into(), AnyValue::Str(method.into())));
                if status > 0 {
                    attributes.push((
                        "http.response.status_code".into(),
                        AnyValue::Int(i64::from(status)),
                    ));
                }
            }
            if let Some(e) = error.as_ref().filter(|_| status == 0) {
                // The client's own error: what it saw on the wire.
                self.log(from, inst, span_id, end_ns, 17, e.clone());
            } else if extra_ms > 0.0 && self.rng.f64() < 0.3 {
                let ms = (end_ns - t) / 1_000_000;
                let msg = format!("slow response from {}: {ms}ms", callee.name);
                self.log(from, inst, span_id, end_ns, 13, msg);
            }
            self.push_span(
                (from, inst),
                (span_id, parent),
                (callee.ops[to_op].name.clone(), SpanKind::Client),
                (t, end_ns),
                error.as_ref(),
                attributes,
            );
            last = Outcome {
                end_ns,
                error: error.clone(),
                status,
            };
            if retries && attempt + 1 < attempts {
                self.log(
                    from,
                    inst,
                    span_id,
                    end_ns,
                    13,
                    format!(
                        "retrying call to {} (attempt {}/{})",
                        callee.name,
                        attempt + 2,
                        attempts
                    ),
                );
            }
            t = end_ns + 1_000_000;
            if error.is_none() && !retries {
                break;
            }
        }
        last
    }

    fn call_peer(
        &mut self,
        from: usize,
        inst: u32,
        parent: [u8; 8],
        p: usize,
        start_ns: i64,
        depth: u32,
    ) -> Outcome {
        let sc = self.sc;
        let peer = &sc.estate.peers[p];
        let span_id = self.span_id();
        let day = season::nyse().moment(self.now).day;
        let mut ms = peer.ms * self.jitter();
        let mut error: Option<String> = None;
        let mut t = start_ns;
        let mut attributes: Attributes = Vec::new();
        let at_peer = |c: Component| c == Component::Peer(p);
        let kind = match &peer.kind {
            PeerKind::Database {
                system,
                namespace,
                reporting,
            } => {
                if *reporting && day.quarter_end {
                    ms *= 3.5;
                } else if *reporting && day.month_end {
                    ms *= 2.5;
                }
                if let Some(m) = self.fault(FaultKind::DbLatency, at_peer) {
                    ms *= 80.0 + 30.0 * m.min(5.0);
                    if self.rng.f64() < 0.3 {
                        let msg = format!("slow query on {}: {}ms", peer.name, ms as i64);
                        self.log(from, inst, parent, t, 13, msg);
                    }
                }
                if self
                    .fault(FaultKind::PoolExhaustion, |c| c == Component::Service(from))
                    .is_some()
                {
                    let wait = 200.0 + 1300.0 * self.rng.f64();
                    t += (wait * 1e6) as i64;
                    if self.rng.f64() < 0.4 {
                        let msg = format!(
                            "connection pool exhausted (max=50) waiting {}ms for {}",
                            wait as i64, peer.name
                        );
                        self.log(from, inst, parent, t, 17, msg.clone());
                        return Outcome {
                            end_ns: t,
                            error: Some(msg),
                            status: 0,
                        };
                    }
                }
                if ms > DB_TIMEOUT_MS {
                    ms = DB_TIMEOUT_MS;
                    error = Some(format!(
                        "query on {} timed out after {}ms",
                        peer.name, DB_TIMEOUT_MS as i64
                    ));
                }
                let sys_key = if sc.estate.old_db_conventions {
                    "db.system"
                } else {
                    "db.system.name"
                };
                attributes.push((sys_key.into(), AnyValue::Str((*system).into())));
                attributes.push(("db.namespace".into(), AnyValue::Str(namespace.clone())));
                attributes.push(("db.operation.name".into(), "SELECT".into()));
                attributes.push(("server.address".into(), AnyValue::Str(peer.name.clone())));
                attributes.push(("server.port".into(), AnyValue::Int(5432)));
                SpanKind::Client
            }
            PeerKind::Cache => {
                if self.fault(FaultKind::CacheOutage, at_peer).is_some() {
                    ms = 1.0 + self.rng.f64();
                    error = Some(format!(
                        "redis: dial tcp {}:6379: connect: connection refused",
                        peer.name
                    ));
                }
                attributes.push(("db.system.name".into(), "redis".into()));
                attributes.push(("db.operation.name".into(), "GET".into()));
                attributes.push(("server.address".into(), AnyValue::Str(peer.name.clone())));
                attributes.push(("server.port".into(), AnyValue::Int(6379)));
                SpanKind::Client
            }
            PeerKind::External => {
                if self.fault(FaultKind::ExternalSlow, at_peer).is_some() {
                    ms *= 15.0;
                    if self.rng.f64() < 0.2 {
                        let msg = format!("slow response from {}: {}ms", peer.name, ms as i64);
                        self.log(from, inst, parent, t, 13, msg);
                    }
                }
                if self.fault(FaultKind::ExternalTimeout, at_peer).is_some() && self.rng.f64() < 0.5
                {
                    ms = EXTERNAL_TIMEOUT_MS;
                }
                if ms >= EXTERNAL_TIMEOUT_MS {
                    ms = EXTERNAL_TIMEOUT_MS;
                    error = Some(format!(
                        "call to https://{}/v2/requests failed: context deadline exceeded",
                        peer.name
                    ));
                }
                attributes.push(("http.request.method".into(), "POST".into()));
                attributes.push(("server.address".into(), AnyValue::Str(peer.name.clone())));
                attributes.push((
                    "url.full".into(),
                    AnyValue::Str(format!("https://{}/v2/requests", peer.name)),
                ));
                if error.is_none() {
                    attributes.push(("http.response.status_code".into(), AnyValue::Int(200)));
                }
                SpanKind::Client
            }
            PeerKind::Topic { consumer, op } => {
                ms = 0.5 + self.rng.f64();
                attributes.push(("messaging.system".into(), "kafka".into()));
                attributes.push((
                    "messaging.destination.name".into(),
                    AnyValue::Str(peer.name.clone()),
                ));
                attributes.push(("messaging.operation.type".into(), "publish".into()));
                let end = t + (ms * 1e6) as i64;
                // The consumer picks the message up after its lag.
                let mut lag_ms = 5.0 + 40.0 * self.rng.f64();
                if let Some(m) = self.fault(FaultKind::ConsumerLag, |c| {
                    c == Component::Service(*consumer)
                }) {
                    lag_ms += m * 20_000.0;
                    if self.rng.f64() < 0.2 {
                        let behind = (m * 900.0) as i64 + 100;
                        self.log(
                            *consumer,
                            0,
                            span_id,
                            end,
                            13,
                            format!("consumer lag on {}: {behind} messages behind", peer.name),
                        );
                    }
                }
                self.serve(Visit {
                    svc: *consumer,
                    op: *op,
                    parent: span_id,
                    start_ns: end + (lag_ms * 1e6) as i64,
                    depth: depth + 1,
                    topic: Some(p),
                    blip: false,
                });
                SpanKind::Producer
            }
        };
        let end_ns = t + (ms * 1e6) as i64;
        if let Some(e) = &error {
            self.log(from, inst, span_id, end_ns, 17, e.clone());
        }
        let name = match kind {
            SpanKind::Producer => format!("publish {}", peer.name),
            _ => match &peer.kind {
                PeerKind::External => "POST".into(),
                PeerKind::Cache => "GET".into(),
                _ => format!("SELECT {}", peer.name),
            },
        };
        self.push_span(
            (from, inst),
            (span_id, parent),
            (name, kind),
            (t, end_ns),
            error.as_ref(),
            attributes,
        );
        Outcome {
            end_ns,
            error,
            status: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_covers_every_kind_and_generates_otel_shaped_data() {
        let suite = Scenario::suite(7, 66);
        let faults: Vec<&Scenario> = suite.iter().filter(|s| !s.faults.is_empty()).collect();
        let negatives: Vec<&Scenario> = suite.iter().filter(|s| s.negative.is_some()).collect();
        assert!(
            faults.len() >= 40 && negatives.len() >= 20,
            "{} {}",
            faults.len(),
            negatives.len()
        );
        for k in FAULT_KINDS {
            assert!(
                faults.iter().any(|s| s.faults.iter().any(|f| f.kind == k)),
                "{k:?}"
            );
        }
        for k in NEGATIVE_KINDS {
            assert!(negatives.iter().any(|s| s.negative == Some(k)), "{k:?}");
        }
        assert!(
            faults.iter().any(|s| s.faults.len() == 2),
            "concurrent faults"
        );
        for s in &faults {
            assert_eq!(s.faults.len(), s.expected.len(), "{}", s.label);
        }
    }

    #[test]
    fn a_fault_shows_in_the_window_and_the_data_is_deterministic() {
        let sc = Scenario::fault(3, 20, FaultKind::DbLatency, None, false);
        let (start, end) = sc.window;
        let a = sc.generate(start, end, 1.0);
        let b = sc.generate(start, end, 1.0);
        assert_eq!(a.spans, b.spans);
        assert!(a.spans.len() > 10_000, "{}", a.spans.len());
        let onset = sc.faults[0].start_ms * 1_000_000;
        let db = &sc.expected[0].name;
        let to_db = |after: bool| {
            let d: Vec<i64> = a
                .spans
                .iter()
                .filter(|s| (s.start_ns >= onset) == after)
                .filter(|s| {
                    s.kind == SpanKind::Client
                        && s.attributes
                            .iter()
                            .any(|(k, v)| k == "server.address" && v.to_text() == *db)
                })
                .map(Span::duration_ns)
                .collect();
            assert!(!d.is_empty(), "client spans name the database");
            d.iter().sum::<i64>() as f64 / d.len() as f64
        };
        assert!(
            to_db(true) > 30.0 * to_db(false),
            "{} vs {}",
            to_db(true),
            to_db(false)
        );
        assert!(
            a.logs
                .iter()
                .any(|l| l.body.to_text().contains("slow query"))
        );
        // History is sampled.
        let (hs, he, share) = sc.ranges()[0];
        let h = sc.generate(hs, he, share);
        assert!(
            h.spans.len() < a.spans.len() / 2,
            "{} vs {}",
            h.spans.len(),
            a.spans.len()
        );
    }
}
