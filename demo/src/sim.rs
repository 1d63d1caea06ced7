//! The simulator: requests walk the routes of [`topology`](super::topology)
//! at the rate [`season::load`] gives, producing spans, logs that carry
//! their trace ids, and RED metrics with exemplars, with an optional fault
//! at one service. Everything is a function of the seed and the time, so a
//! window of history comes out the same however it is cut up (only the
//! cumulative metrics depend on where the simulation started).

use std::collections::BTreeMap;

use sextant_storage::{AnyValue, LogRecord, Resource, Span, SpanKind, StatusCode};

use super::season::load;
use super::topology::{Call, ROUTES, Route};

/// What goes wrong, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Queries of a database take ~40× longer; everything above it slows.
    SlowDatabase,
    /// Half the calls to a service fail (connection refused); callers fail.
    FailingDependency,
    /// A new version of a service fails a fifth of its calls and is slower.
    BadDeploy,
    /// A service's memory climbs to its limit; latency and failures grow.
    ResourceExhaustion,
}

/// The names `--fault` takes, each with its kind.
const FAULT_NAMES: [(&str, FaultKind); 4] = [
    ("slow-database", FaultKind::SlowDatabase),
    ("failing-dependency", FaultKind::FailingDependency),
    ("bad-deploy", FaultKind::BadDeploy),
    ("resource-exhaustion", FaultKind::ResourceExhaustion),
];

impl FaultKind {
    /// Parses `slow-database`, `failing-dependency`, `bad-deploy`,
    /// `resource-exhaustion`.
    pub fn parse(s: &str) -> Option<FaultKind> {
        FAULT_NAMES.iter().find(|(n, _)| *n == s).map(|&(_, k)| k)
    }

    /// The name [`FaultKind::parse`] takes.
    pub fn name(self) -> &'static str {
        FAULT_NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |&(n, _)| n)
    }
}

/// A fault at `service` during `[start_ms, end_ms)`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// Where.
    pub service: String,
    /// From (ms since the epoch).
    pub start_ms: i64,
    /// Until (ms since the epoch, exclusive).
    pub end_ms: i64,
}

/// How long a fault takes to reach its full effect: a leaking service
/// reaches its memory limit a quarter of an hour after the leak begins
/// (sooner when the fault is shorter), so the demo's default fault, begun
/// ten minutes ago, is already an incident.
const BUILD_UP_MS: i64 = 15 * 60_000;

impl Fault {
    /// How far the fault has built up at `t_ms`, 0..=1, or `None` outside
    /// it.
    fn progress(&self, service: &str, t_ms: i64) -> Option<f64> {
        let ramp = (self.end_ms - self.start_ms).clamp(1, BUILD_UP_MS);
        (service == self.service && (self.start_ms..self.end_ms).contains(&t_ms))
            .then(|| ((t_ms - self.start_ms) as f64 / ramp as f64).min(1.0))
    }
}

/// Instances per service (`service.instance.id` = `name-0`, `name-1`).
const INSTANCES: u64 = 2;

/// The version every service runs, and the one a bad deploy brings.
pub const VERSION: &str = "2.3.9";
/// The version of a bad deploy.
pub const BAD_VERSION: &str = "2.4.0";

/// Histogram bounds of request durations, seconds.
pub const BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Metrics are scraped this often, ms.
pub const SCRAPE_MS: i64 = 15_000;

/// An exemplar: the latest request seen in a histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// When, ns.
    pub time_ns: i64,
    /// The observed duration, s.
    pub value: f64,
    /// Its trace.
    pub trace_id: [u8; 16],
    /// Its span.
    pub span_id: [u8; 8],
}

/// Cumulative RED state of one (service, instance, operation, code).
#[derive(Debug, Clone, Default)]
pub struct Red {
    /// Requests.
    pub count: u64,
    /// Sum of durations, s.
    pub sum: f64,
    /// Per bucket of [`BOUNDS`] (plus +Inf), non-cumulative counts.
    pub buckets: [u64; 12],
    /// Latest exemplar per bucket.
    pub exemplars: [Option<Exemplar>; 12],
}

/// Key of a RED series: service, instance, operation, status code.
pub type RedKey = (&'static str, u64, &'static str, u16);

/// A scrape: every RED series and the gauges at one time.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// When, ms.
    pub t_ms: i64,
    /// Cumulative RED state.
    pub red: BTreeMap<RedKey, Red>,
    /// (service, instance) → (memory bytes, cpu utilisation 0..1, version).
    pub gauges: BTreeMap<(&'static str, u64), (f64, f64, &'static str)>,
}

/// What one window of simulated time produced.
#[derive(Debug, Default)]
pub struct Batch {
    /// Spans, in request order.
    pub spans: Vec<Span>,
    /// Log records, in request order.
    pub logs: Vec<LogRecord>,
    /// Scrapes at each [`SCRAPE_MS`] boundary in the window.
    pub scrapes: Vec<Scrape>,
}

/// The simulation.
pub struct Sim {
    seed: u64,
    /// Root requests per second at load 1.0.
    rate: f64,
    faults: Vec<Fault>,
    red: BTreeMap<RedKey, Red>,
    resources: Resources,
}

/// Each instance's resource, shared by all it sends, as an SDK does.
type Resources = BTreeMap<(&'static str, u64, &'static str), Resource>;

/// One request in flight.
struct Req<'a> {
    rng: fastrand::Rng,
    trace_id: [u8; 16],
    route: &'a Route,
    batch: &'a mut Batch,
    red: &'a mut BTreeMap<RedKey, Red>,
    resources: &'a mut Resources,
    faults: &'a [Fault],
}

impl Sim {
    /// A simulation of `rate` root requests a second at normal market-hours
    /// load, with `faults`.
    pub fn new(seed: u64, rate: f64, faults: Vec<Fault>) -> Sim {
        Sim {
            seed,
            rate,
            faults,
            red: BTreeMap::new(),
            resources: BTreeMap::new(),
        }
    }

    /// The requests of `[from_ms, to_ms)` (whole seconds), with the scrapes
    /// at the scrape boundaries inside it.
    pub fn run(&mut self, from_ms: i64, to_ms: i64) -> Batch {
        let mut batch = Batch::default();
        let mut sec = from_ms.div_euclid(1000);
        while sec * 1000 < to_ms {
            let t = sec * 1000;
            if t.rem_euclid(SCRAPE_MS) == 0 && t >= from_ms {
                batch.scrapes.push(self.scrape(t));
            }
            let mut rng = fastrand::Rng::with_seed(
                self.seed ^ (sec as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            let lambda = self.rate * load(t);
            let n = lambda.floor() as u64 + u64::from(rng.f64() < lambda.fract());
            for _ in 0..n {
                let start_ns = t * 1_000_000 + rng.i64(0..1_000_000_000);
                let route = pick_route(&mut rng, t);
                let mut trace_id = [0u8; 16];
                rng.fill(&mut trace_id);
                let mut req = Req {
                    rng: rng.fork(),
                    trace_id,
                    route,
                    batch: &mut batch,
                    red: &mut self.red,
                    resources: &mut self.resources,
                    faults: &self.faults,
                };
                req.call(&route.root, start_ns, [0; 8]);
            }
            sec += 1;
        }
        batch
    }

    fn scrape(&self, t_ms: i64) -> Scrape {
        let mut gauges = BTreeMap::new();
        let mut rng = fastrand::Rng::with_seed(self.seed ^ t_ms as u64);
        for svc in super::topology::services() {
            for inst in 0..INSTANCES {
                let mut mem = 300e6 + 40e6 * rng.f64();
                let mut cpu = (0.15 + 0.5 * load(t_ms) / 3.5 + 0.05 * rng.f64()).min(1.0);
                let mut version = VERSION;
                for f in &self.faults {
                    match (f.kind, f.progress(svc, t_ms)) {
                        (FaultKind::ResourceExhaustion, Some(p)) => {
                            mem += (1.0e9 - mem) * p.sqrt();
                            cpu = (cpu + 0.6 * p).min(1.0);
                        }
                        (FaultKind::BadDeploy, Some(_)) => version = BAD_VERSION,
                        _ => {}
                    }
                }
                gauges.insert((svc, inst), (mem, cpu, version));
            }
        }
        Scrape {
            t_ms,
            red: self.red.clone(),
            gauges,
        }
    }
}

fn pick_route(rng: &mut fastrand::Rng, t_ms: i64) -> &'static Route {
    let month_end = super::season::nyse().moment(t_ms).day.month_end;
    let weight = |r: &Route| r.share * if month_end { r.month_end } else { 1.0 };
    let total: f64 = ROUTES.iter().map(weight).sum();
    let mut x = rng.f64() * total;
    for r in &ROUTES {
        x -= weight(r);
        if x < 0.0 {
            return r;
        }
    }
    &ROUTES[0]
}

impl Req<'_> {
    fn resource(
        &mut self,
        service: &'static str,
        instance: u64,
        version: &'static str,
    ) -> Resource {
        let r = self
            .resources
            .entry((service, instance, version))
            .or_insert_with(|| {
                Resource::new(vec![
                    ("service.name".into(), service.into()),
                    (
                        "service.instance.id".into(),
                        format!("{service}-{instance}").as_str().into(),
                    ),
                    ("service.version".into(), version.into()),
                    ("deployment.environment".into(), "demo".into()),
                ])
            });
        Resource::clone(r)
    }

    fn fault(&self, service: &str, t_ms: i64) -> Option<(FaultKind, f64)> {
        self.faults
            .iter()
            .find_map(|f| f.progress(service, t_ms).map(|p| (f.kind, p)))
    }

    /// Simulates `c` starting at `start_ns`; returns its end and whether
    /// it failed.
    fn call(&mut self, c: &'static Call, start_ns: i64, parent: [u8; 8]) -> (i64, bool) {
        let t_ms = start_ns.div_euclid(1_000_000);
        let fault = self.fault(c.service, t_ms);
        let mut own = c.self_ms * (0.6 + 0.8 * self.rng.f64());
        if self.rng.f64() < 0.01 {
            own *= 4.0;
        }
        let mut fail_p = 0.001;
        match fault {
            Some((FaultKind::SlowDatabase, _)) => own *= 40.0,
            Some((FaultKind::FailingDependency, _)) => {
                fail_p = 0.5;
                own *= 3.0;
            }
            Some((FaultKind::BadDeploy, _)) => {
                fail_p = 0.2;
                own *= 2.0;
            }
            Some((FaultKind::ResourceExhaustion, p)) => {
                fail_p = 0.3 * p;
                own *= 1.0 + 6.0 * p;
            }
            None => {}
        }
        let mut span_id = [0u8; 8];
        self.rng.fill(&mut span_id);
        let own_ns = (own * 1e6) as i64;
        let mut t = start_ns + own_ns / 2;
        let mut failed_child: Option<&'static str> = None;
        for k in c.children {
            let (end, failed) = self.call(k, t + 200_000, span_id);
            t = end;
            if failed && failed_child.is_none() {
                failed_child = Some(k.service);
            }
        }
        let end_ns = t + own_ns - own_ns / 2;
        let own_failure = self.rng.f64() < fail_p;
        let failed = own_failure || (failed_child.is_some() && self.rng.f64() < 0.85);
        let instance = self.rng.u64(0..INSTANCES);
        let version = match fault {
            Some((FaultKind::BadDeploy, _)) => BAD_VERSION,
            _ => VERSION,
        };
        let code: u16 = match (failed, fault) {
            (false, _) => 200,
            (true, Some((FaultKind::FailingDependency, _))) if own_failure => 503,
            (true, _) if !own_failure => 502,
            (true, _) => 500,
        };
        let root = parent == [0; 8];
        let message = failed.then(|| self.failure_text(c, fault, failed_child));
        self.log(
            c, start_ns, end_ns, span_id, instance, version, code, root, &message, fault,
        );
        let mut attributes: Vec<(String, AnyValue)> = Vec::new();
        if root {
            attributes.push(("http.route".into(), self.route.name.into()));
            attributes.push((
                "http.response.status_code".into(),
                AnyValue::Int(i64::from(code)),
            ));
        }
        if let Some(sys) = c.store {
            attributes.push(("db.system".into(), sys.into()));
            attributes.push(("server.address".into(), c.service.into()));
            attributes.push(("db.statement".into(), c.op.into()));
        }
        let resource = self.resource(c.service, instance, version);
        self.batch.spans.push(Span {
            trace_id: self.trace_id,
            span_id,
            parent_span_id: parent,
            name: c.op.into(),
            kind: if c.store.is_some() {
                SpanKind::Client
            } else {
                SpanKind::Server
            },
            start_ns,
            end_ns,
            status: if failed {
                StatusCode::Error
            } else {
                StatusCode::Ok
            },
            status_message: message.unwrap_or_default(),
            attributes,
            resource,
            ..Span::default()
        });
        let secs = (end_ns - start_ns) as f64 / 1e9;
        let red = self
            .red
            .entry((c.service, instance, c.op, code))
            .or_default();
        red.count += 1;
        red.sum += secs;
        let b = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        red.buckets[b] += 1;
        red.exemplars[b] = Some(Exemplar {
            time_ns: end_ns,
            value: secs,
            trace_id: self.trace_id,
            span_id,
        });
        (end_ns, failed)
    }

    fn failure_text(
        &self,
        c: &Call,
        fault: Option<(FaultKind, f64)>,
        failed_child: Option<&str>,
    ) -> String {
        match (fault, failed_child) {
            (Some((FaultKind::FailingDependency, _)), _) => format!(
                "connection refused: {}:5432 (connection pool exhausted)",
                c.service
            ),
            (Some((FaultKind::BadDeploy, _)), _) => {
                format!("NullPointerException in {} (version {BAD_VERSION})", c.op)
            }
            (Some((FaultKind::ResourceExhaustion, _)), _) => {
                "out of memory: failed to allocate 64 MiB (heap at 97% of limit)".into()
            }
            (_, Some(child)) => format!("upstream {child} failed: 502 Bad Gateway"),
            _ => format!("internal error in {}: deadline exceeded", c.op),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &mut self,
        c: &Call,
        start_ns: i64,
        end_ns: i64,
        span_id: [u8; 8],
        instance: u64,
        version: &'static str,
        code: u16,
        root: bool,
        failure: &Option<String>,
        fault: Option<(FaultKind, f64)>,
    ) {
        let ms = (end_ns - start_ns) / 1_000_000;
        let mut lines: Vec<(u8, String)> = Vec::new();
        if root {
            lines.push((9, format!("{} {code} {ms}ms", self.route.name)));
            if ms > 1000 {
                lines.push((13, format!("slow request: {} took {ms}ms", self.route.name)));
            }
        }
        if matches!(fault, Some((FaultKind::SlowDatabase, _))) && ms > 100 {
            lines.push((13, format!("slow query: {} took {ms}ms", c.op)));
        }
        if let Some(f) = failure {
            lines.push((17, format!("{} failed: {f}", c.op)));
        }
        let resource = self.resource(c.service, instance, version);
        for (severity, body) in lines {
            self.batch.logs.push(LogRecord {
                time_ns: end_ns,
                observed_ns: end_ns,
                severity,
                severity_text: sextant_storage::level_of(severity, "").to_uppercase(),
                body: AnyValue::Str(body),
                attributes: vec![("code.function".into(), c.op.into())],
                resource: Resource::clone(&resource),
                trace_id: self.trace_id,
                span_id,
                flags: 1,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_599_400_000; // 2025-12-01 14:30 UTC: the opening bell.

    #[test]
    fn a_fault_is_printed_by_the_name_it_is_asked_for_by() {
        for (name, kind) in FAULT_NAMES {
            assert_eq!(kind.name(), name);
            assert_eq!(FaultKind::parse(name), Some(kind));
        }
        assert_eq!(FaultKind::parse("BadDeploy"), None);
    }

    #[test]
    fn the_same_seed_and_time_give_the_same_requests_however_cut() {
        let whole = Sim::new(7, 5.0, vec![]).run(T0, T0 + 60_000);
        let mut sim = Sim::new(7, 5.0, vec![]);
        let mut a = sim.run(T0, T0 + 20_000);
        let b = sim.run(T0 + 20_000, T0 + 60_000);
        a.spans.extend(b.spans);
        assert_eq!(a.spans, whole.spans);
        assert!(whole.spans.len() > 500, "{}", whole.spans.len());
        assert_eq!(whole.scrapes.len(), 4);
    }

    #[test]
    fn a_slow_database_slows_its_callers() {
        let fault = Fault {
            kind: FaultKind::SlowDatabase,
            service: "ledger-db".into(),
            start_ms: T0,
            end_ms: T0 + 60_000,
        };
        let normal = Sim::new(1, 5.0, vec![]).run(T0, T0 + 60_000);
        let slow = Sim::new(1, 5.0, vec![fault]).run(T0, T0 + 60_000);
        let mean = |b: &Batch, svc: &str| {
            let d: Vec<i64> = b
                .spans
                .iter()
                .filter(|s| s.service() == svc)
                .map(Span::duration_ns)
                .collect();
            d.iter().sum::<i64>() as f64 / d.len() as f64
        };
        assert!(mean(&slow, "ledger-db") > 20.0 * mean(&normal, "ledger-db"));
        assert!(mean(&slow, "ledger") > 5.0 * mean(&normal, "ledger"));
        assert!(mean(&slow, "quotes") < 1.5 * mean(&normal, "quotes"));
        assert!(
            slow.logs
                .iter()
                .any(|l| l.body.to_text().starts_with("slow query"))
        );
    }
}
