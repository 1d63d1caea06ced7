//! The simulated 26-service brokerage behind `sextant demo`, as a
//! library: its topology, its New York market-hours seasonality, the
//! faults it can inject, and a feed that sends it through a server's real
//! OTLP/gRPC ingest (a backfill of history, then live data every second).
//! The CLI runs it against the server it starts; tests and benchmarks use
//! it as ground truth. It knows nothing of the server's code.

pub mod cookbook;
pub mod estate;
pub mod otlp;
pub mod scenario;
pub mod score;
pub mod season;
pub mod sim;
pub mod topology;

use std::time::Duration;

use sim::{Fault, FaultKind, Sim};

/// Errors of the demo: arguments that do not make sense, or a server that
/// cannot be reached or refuses the data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad option; the message says what to write.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached or refused what was sent.
    #[error("{0}")]
    Feed(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to simulate: the options of `sextant demo` other than where the
/// data goes.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoOptions {
    /// History to backfill before going live (`24h`, `7d`; `0s`: none).
    #[arg(long, default_value = "1h")]
    pub backfill: String,
    /// Stop after the backfill instead of feeding live data.
    #[arg(long)]
    pub no_live: bool,
    /// Root requests per second at normal market-hours load (the open
    /// bursts to ~3.5×, nights drop to ~0.1×).
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Seed of the simulation: the same seed and times give the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The fault to inject: `auto` (default: one picked by the seed, with
    /// market-hours traffic whatever the hour, so a newcomer sees an
    /// incident at once), `none` (a calm system at the clock's own
    /// traffic), or `KIND:SERVICE` with KIND slow-database,
    /// failing-dependency, bad-deploy or resource-exhaustion (e.g.
    /// `slow-database:ledger-db`, `failing-dependency:payments`).
    #[arg(long, default_value = "auto")]
    pub fault: String,
    /// When the fault starts, relative to now (`-10m`: ten minutes ago,
    /// inside the first diagnosis window, so a deploy behind it is seen).
    #[arg(long, default_value = "-10m", allow_hyphen_values = true)]
    pub fault_start: String,
    /// How long the fault lasts.
    #[arg(long, default_value = "1h")]
    pub fault_duration: String,
    /// The simulated present, ms since the epoch (default: the clock), so
    /// a run can be reproduced exactly.
    #[arg(long)]
    pub now_ms: Option<i64>,
}

/// Simulated time fed per export during the backfill.
const BACKFILL_STEP_MS: i64 = 60_000;

fn duration_ms(what: &str, s: &str) -> Result<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let ms = if rest == "0" || rest == "0s" {
        Some(0)
    } else {
        sextant_query::parse_duration(rest)
    };
    ms.map(|ms| if neg { -ms } else { ms }).ok_or_else(|| {
        Error::Usage(format!(
            "{what} {s:?}: expected a duration like 15m, -15m or 24h"
        ))
    })
}

/// What the demo will do, resolved from its arguments.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seed.
    pub seed: u64,
    /// Root requests per second at load 1.
    pub rate: f64,
    /// The fault, if any.
    pub faults: Vec<Fault>,
    /// Backfill from here (ms since the epoch, whole seconds).
    pub from_ms: i64,
    /// The present when the demo started.
    pub now_ms: i64,
    /// Whether to go on live after the backfill.
    pub live: bool,
}

impl Plan {
    /// Resolves `args` at `now_ms`.
    pub fn new(args: &DemoOptions, now_ms: i64) -> Result<Plan> {
        let now_ms = now_ms - now_ms.rem_euclid(1000);
        let backfill = duration_ms("--backfill", &args.backfill)?.max(0);
        // `auto` picks one of these by the seed.
        const AUTO: [&str; 4] = [
            "slow-database:ledger-db",
            "failing-dependency:payments",
            "bad-deploy:orders",
            "resource-exhaustion:portfolio",
        ];
        let chosen = match args.fault.as_str() {
            "none" => None,
            "auto" => Some(AUTO[(args.seed % AUTO.len() as u64) as usize]),
            f => Some(f),
        };
        let faults = match chosen {
            None => Vec::new(),
            Some(f) => {
                let (kind, service) = f
                    .split_once(':')
                    .ok_or_else(|| Error::Usage(format!("--fault {f:?}: expected KIND:SERVICE")))?;
                let kind = FaultKind::parse(kind).ok_or_else(|| {
                    Error::Usage(format!(
                        "--fault {f:?}: unknown kind {kind:?}; use slow-database, \
                         failing-dependency, bad-deploy or resource-exhaustion"
                    ))
                })?;
                if !topology::services().contains(&service) {
                    return Err(Error::Usage(format!(
                        "--fault {f:?}: no service {service:?}; services: {}",
                        topology::services().join(", ")
                    )));
                }
                let start_ms = now_ms + duration_ms("--fault-start", &args.fault_start)?;
                let len = duration_ms("--fault-duration", &args.fault_duration)?.max(1);
                vec![Fault {
                    kind,
                    service: service.into(),
                    start_ms,
                    end_ms: start_ms + len,
                }]
            }
        };
        if !(args.rate > 0.0 && args.rate <= 10_000.0) {
            return Err(Error::Usage(format!(
                "--rate {}: expected a number of requests per second in (0, 10000]",
                args.rate
            )));
        }
        // With `auto`, a quiet hour (a night, a weekend) gets the traffic
        // of market hours, up to ten times the configured rate.
        let rate = if args.fault == "auto" {
            args.rate / season::load(now_ms).clamp(0.1, 1.0)
        } else {
            args.rate
        };
        Ok(Plan {
            seed: args.seed,
            rate,
            faults,
            from_ms: now_ms - backfill,
            now_ms,
            live: !args.no_live,
        })
    }
}

/// The clock, ms since the epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Feeds `plan` to the OTLP/gRPC server at `addr`: the backfill, then
/// (when live) one second at a time as the clock moves. `resume` is where
/// an earlier demo on the same data stopped feeding; nothing before it is
/// sent again.
pub async fn feed(addr: &str, plan: Plan, resume: Option<i64>) -> Result<()> {
    let mut sender = None;
    for _ in 0..50 {
        match otlp::Sender::connect(addr).await {
            Ok(s) => {
                sender = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let mut sender = sender.ok_or_else(|| Error::Feed(format!("cannot connect to {addr}")))?;
    let start = resume.map_or(plan.from_ms, |r| r.max(plan.from_ms));
    let mut sim = Sim::new(plan.seed, plan.rate, plan.faults.clone());
    let mut t = start;
    let (mut spans, mut logs) = (0usize, 0usize);
    let began = std::time::Instant::now();
    while t < plan.now_ms {
        let next = (t + BACKFILL_STEP_MS).min(plan.now_ms);
        let b = sim.run(t, next);
        spans += b.spans.len();
        logs += b.logs.len();
        sender
            .send(&b, start)
            .await
            .map_err(|e| Error::Feed(format!("the server refused demo data: {e}")))?;
        t = next;
    }
    if plan.now_ms > start {
        println!(
            "sextant demo: backfilled {} of history ({spans} spans, {logs} log records) in {:.1}s",
            human((plan.now_ms - start) / 1000),
            began.elapsed().as_secs_f64()
        );
    }
    if !plan.live {
        return Ok(());
    }
    let offset = plan.now_ms - wall_ms();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = wall_ms() + offset;
        let now = now - now.rem_euclid(1000);
        if now <= t {
            continue;
        }
        let b = sim.run(t, now);
        if let Err(e) = sender.send(&b, start).await {
            eprintln!("sextant demo: send failed ({e}); retrying next second");
            continue;
        }
        t = now;
    }
}

fn human(secs: i64) -> String {
    if secs >= 3600 {
        format!("{:.1}h", secs as f64 / 3600.0)
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

/// Where an earlier demo on this database stopped within `[from, to]`
/// (only there could it overlap this one; reading nothing older keeps the
/// start quick on a long-lived demo database): the newest scrape of its
/// request counter (the metrics are sent last in each batch), rounded up
/// to the next second.
pub fn fed_until(db: &sextant_storage::Db, from: i64, to: i64) -> Option<i64> {
    let m = [sextant_storage::Matcher::equal(
        sextant_storage::METRIC_NAME,
        "http_server_requests_total",
    )];
    let newest = db
        .select(&m, from, to)
        .ok()?
        .filter_map(|s| s.ok()?.samples.last().map(|x| x.t))
        .max()?;
    Some(newest - newest.rem_euclid(1000) + 1000)
}

/// Prints what the demo will simulate.
pub fn print_plan(plan: &Plan) {
    println!(
        "sextant demo: {} services, {:.1} requests/s at market-hours load, seed {}",
        topology::services().len(),
        plan.rate,
        plan.seed
    );
    for f in &plan.faults {
        let start = (f.start_ms - plan.now_ms) / 1000;
        let when = if start < 0 {
            format!("{} ago", human(-start))
        } else {
            format!("in {}", human(start))
        };
        println!(
            "sextant demo: fault {}:{}, starting {when}, lasting {}",
            f.kind.name(),
            f.service,
            human((f.end_ms - f.start_ms) / 1000)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> DemoOptions {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            demo: DemoOptions,
        }
        Cli::try_parse_from(std::iter::once("demo").chain(extra.iter().copied()))
            .unwrap()
            .demo
    }

    #[test]
    fn bad_demo_arguments_say_what_to_write() {
        let now = 1_800_000_000_000;
        for (extra, want) in [
            (&["--fault", "slow-database"][..], "expected KIND:SERVICE"),
            (&["--fault", "meteor:ledger-db"][..], "unknown kind"),
            (&["--fault", "bad-deploy:nope"][..], "no service \"nope\""),
            (&["--backfill", "lots"][..], "--backfill"),
            (&["--rate", "0"][..], "--rate"),
            (
                &["--fault", "bad-deploy:auth", "--fault-start", "soon"][..],
                "--fault-start",
            ),
        ] {
            let e = Plan::new(&args(extra), now).unwrap_err().to_string();
            assert!(e.contains(want), "{extra:?}: {e}");
        }
        let p = Plan::new(
            &args(&[
                "--fault",
                "failing-dependency:payments",
                "--fault-start",
                "-10m",
                "--backfill",
                "2h",
            ]),
            now + 123,
        )
        .unwrap();
        assert_eq!((p.from_ms, p.now_ms), (now - 7_200_000, now));
        assert_eq!(p.faults[0].start_ms, now - 600_000);
        assert_eq!(p.faults[0].end_ms - p.faults[0].start_ms, 3_600_000);
        assert_eq!(p.rate, 5.0, "the configured rate with a named fault");

        // By default a fault picked by the seed began 10 minutes ago, at
        // market-hours traffic: 03:00 in New York is busy too.
        let night = 1_796_544_000_000; // Sunday 6 December 2026, 03:00 New York
        let p = Plan::new(&args(&[]), night).unwrap();
        assert_eq!(p.faults.len(), 1);
        assert_eq!(p.faults[0].start_ms, night - 600_000);
        assert!(topology::services().contains(&p.faults[0].service.as_str()));
        assert!(
            p.rate >= 5.0 / season::load(night).max(0.1) - 1e-9,
            "{}",
            p.rate
        );
        let other = Plan::new(&args(&["--seed", "43"]), night).unwrap();
        assert_ne!(other.faults[0].service, p.faults[0].service);
        let calm = Plan::new(&args(&["--fault", "none"]), night).unwrap();
        assert!(calm.faults.is_empty());
        assert_eq!(calm.rate, 5.0);
    }
}
