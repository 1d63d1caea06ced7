//! `sextant serve` settings: flags, `SEXTANT_*` environment variables and a
//! TOML file, in that order of precedence, over defaults that work on a
//! fresh machine (loopback addresses, `./sextant-data`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sextant_query::EngineOptions;
use sextant_storage::{Durability, Options};

use super::tls::Tls;
use crate::error::ApiError;

/// Settings of `sextant serve`. Every flag has an environment variable and
/// a key of the same name (with `_`) in the `--config` TOML file.
#[derive(clap::Args, serde::Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flags, with `_`
    /// for `-`); flags and environment variables override it.
    #[arg(long, env = "SEXTANT_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// gRPC listener: OTLP collector services, sextant.v1.Query, health,
    /// reflection. Port 0 picks a free port.
    #[arg(long, env = "SEXTANT_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listener (`/v1/traces`, `/v1/metrics`, `/v1/logs`).
    #[arg(long, env = "SEXTANT_OTLP_HTTP_ADDR")]
    pub otlp_http_addr: Option<SocketAddr>,
    /// Prometheus-compatible HTTP API listener (`/api/v1/...`, remote_write, `/metrics`).
    #[arg(long, env = "SEXTANT_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// When a write is acknowledged: `always` (after fsync, group commit),
    /// `interval:MS` (fsync every MS) or `never` (at segment rotation). Default: always.
    #[arg(long, env = "SEXTANT_DURABILITY")]
    pub durability: Option<String>,
    /// Delete blocks older than this (`15d`, `12h`). Default: keep everything.
    #[arg(long, env = "SEXTANT_RETENTION")]
    pub retention: Option<String>,
    /// Reject samples older than the newest of their series minus this
    /// (`10m`, `2h`), as Prometheus does. Default: accept any age (backfills
    /// in any order).
    #[arg(long, env = "SEXTANT_OOO_WINDOW")]
    pub ooo_window: Option<String>,
    /// Bearer token required on every listener (`Authorization: Bearer TOKEN`).
    /// Unset: no authentication (loopback defaults).
    #[arg(long, env = "SEXTANT_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// PEM certificate chain: with --tls-key, every listener speaks TLS
    /// (HTTPS, gRPC over TLS). Unset: plain text (loopback defaults).
    #[arg(long, env = "SEXTANT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "SEXTANT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted, compressed, in bytes. Default: 64 MiB.
    #[arg(long, env = "SEXTANT_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest request body after decompression (gzip, snappy), in bytes: the
    /// guard against compression bombs. Default: 256 MiB.
    #[arg(long, env = "SEXTANT_MAX_DECOMPRESSED_BYTES")]
    pub max_decompressed_bytes: Option<usize>,
    /// Queries run at once; more wait up to the query timeout. Default: 2× CPUs.
    #[arg(long, env = "SEXTANT_MAX_CONCURRENT_QUERIES")]
    pub max_concurrent_queries: Option<usize>,
    /// Longest a query may run (`2m`). Default: 2m.
    #[arg(long, env = "SEXTANT_QUERY_TIMEOUT")]
    pub query_timeout: Option<String>,
    /// Most samples one query may hold at once. Default: 50,000,000.
    #[arg(long, env = "SEXTANT_QUERY_MAX_SAMPLES")]
    pub query_max_samples: Option<usize>,
    /// Most series one query may select. Default: 1,000,000.
    #[arg(long, env = "SEXTANT_QUERY_MAX_SERIES")]
    pub query_max_series: Option<usize>,
    /// Write requests decoded and stored at once (backpressure: the rest
    /// wait with their bodies unread). Default: 2× CPUs, at least 4.
    #[arg(long, env = "SEXTANT_MAX_CONCURRENT_WRITES")]
    pub max_concurrent_writes: Option<usize>,
    /// Longest a write waits for a slot before it is answered 503 /
    /// UNAVAILABLE, which remote_write and OTLP senders retry (`30s`).
    #[arg(long, env = "SEXTANT_MAX_WRITE_WAIT")]
    pub max_write_wait: Option<String>,
    /// Most series one write request may create. Default: 100,000.
    #[arg(long, env = "SEXTANT_MAX_SERIES_PER_WRITE")]
    pub max_series_per_write: Option<usize>,
    /// Most active series in the head; new series are refused beyond it. Default: 10,000,000.
    #[arg(long, env = "SEXTANT_MAX_SERIES")]
    pub max_series: Option<usize>,
    /// Samples the head holds before it is flushed to a block: the bound on
    /// ingest memory (about 4 bytes a sample). Default: 16,000,000.
    #[arg(long, env = "SEXTANT_MAX_HEAD_SAMPLES")]
    pub max_head_samples: Option<u64>,
    /// Memory for decompressed block chunk frames that queries read again
    /// (dashboards repeat their queries), in MiB; 0 turns it off. Default: 32.
    #[arg(long, env = "SEXTANT_FRAME_CACHE_MB")]
    pub frame_cache_mb: Option<u64>,
    /// Exchange calendar file (TOML: time zone, hours, holidays; see
    /// docs/diagnosis.md). Default: the NYSE in New York time.
    #[arg(long, env = "SEXTANT_CALENDAR")]
    pub calendar: Option<PathBuf>,
    /// How often the continuous diagnosis looks at the last 15 minutes
    /// (`1m`; `off` to stop it). Default: 1m.
    #[arg(long, env = "SEXTANT_DIAGNOSE_EVERY")]
    pub diagnose_every: Option<String>,
    /// URL an Alertmanager-style webhook is posted to when an incident
    /// opens, changes its top cause, or resolves.
    #[arg(long, env = "SEXTANT_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// Prometheus' opt-in behaviours, by Prometheus' names, comma-separated:
    /// `promql-delayed-name-removal` keeps `__name__` until a query's
    /// result is complete. Names of features Sextant always has
    /// (`native-histograms`, …) are accepted.
    #[arg(long, env = "SEXTANT_ENABLE_FEATURE", value_delimiter = ',')]
    pub enable_feature: Option<Vec<String>>,
}

/// Prometheus feature flags that name what Sextant always does.
const ALWAYS_ON_FEATURES: [&str; 6] = [
    "native-histograms",
    "exemplar-storage",
    "promql-experimental-functions",
    "promql-duration-expr",
    "promql-extended-range-selectors",
    "promql-binop-fill-modifiers",
];

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// gRPC listener.
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP listener.
    pub otlp_http_addr: SocketAddr,
    /// Prometheus HTTP listener.
    pub http_addr: SocketAddr,
    /// Engine options.
    pub db: Options,
    /// Query engine options (limits, timeout).
    pub query: EngineOptions,
    /// Required bearer token.
    pub auth_token: Option<String>,
    /// Certificate and key, when the listeners speak TLS.
    pub tls: Option<Tls>,
    /// Body limit before decompression.
    pub max_body_bytes: usize,
    /// Body limit after decompression.
    pub max_decompressed_bytes: usize,
    /// Concurrent queries.
    pub max_concurrent_queries: usize,
    /// Write requests in progress at once.
    pub max_concurrent_writes: usize,
    /// Longest wait for a write slot.
    pub max_write_wait: Duration,
    /// Series one write may create.
    pub max_series_per_write: usize,
    /// The market's calendar (diagnosis baselines).
    pub calendar: std::sync::Arc<sextant_diagnose::Calendar>,
    /// Continuous diagnosis period; `None`: off.
    pub diagnose_every: Option<Duration>,
    /// Webhook for incidents.
    pub alert_webhook: Option<String>,
}

impl ServeArgs {
    /// Fills unset values from the config file (if any) and defaults.
    pub fn resolve(mut self, data_dir: &Path) -> Result<Config, ApiError> {
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ApiError::config(format!("{}: {e}", path.display())))?;
            let file: ServeArgs = toml::from_str(&text)
                .map_err(|e| ApiError::config(format!("{}: {e}", path.display())))?;
            self = self.or(file);
        }
        let addr = |v: Option<SocketAddr>, port: u16| {
            v.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)))
        };
        let mut db = Options {
            durability: match &self.durability {
                Some(d) => parse_durability("--durability", d)?,
                None => Durability::Always,
            },
            release_memory: Some(crate::alloc::release_freed_pages),
            ..Options::default()
        };
        if let Some(r) = &self.retention {
            db.retention = Some(Duration::from_millis(duration_ms("--retention", r)? as u64));
        }
        if let Some(w) = &self.ooo_window {
            db.ooo_window_ms = duration_ms("--ooo-window", w)?;
        }
        if let Some(n) = self.max_series {
            db.max_series = n;
        }
        if let Some(n) = self.max_head_samples {
            if n == 0 {
                return Err(ApiError::config(
                    "--max-head-samples 0: the head must hold at least one sample \
                     before a flush (the default is 16000000)",
                ));
            }
            db.max_head_samples = n;
        }
        if let Some(mb) = self.frame_cache_mb {
            db.frame_cache_bytes = mb.saturating_mul(1 << 20);
        }
        let mut query = EngineOptions::default();
        if let Some(t) = &self.query_timeout {
            query.timeout = Some(Duration::from_millis(
                duration_ms("--query-timeout", t)? as u64
            ));
        }
        if let Some(n) = self.query_max_samples {
            query.max_samples = n;
        }
        if let Some(n) = self.query_max_series {
            query.max_series = n;
        }
        for f in self.enable_feature.iter().flatten() {
            match f.trim() {
                "promql-delayed-name-removal" => query.delayed_name_removal = true,
                f if ALWAYS_ON_FEATURES.contains(&f) => {}
                f => {
                    return Err(ApiError::config(format!(
                        "--enable-feature {f:?}: unknown; known are \
                         promql-delayed-name-removal and (always on) {}",
                        ALWAYS_ON_FEATURES.join(", ")
                    )));
                }
            }
        }
        let max_write_wait = match &self.max_write_wait {
            Some(w) => Duration::from_millis(duration_ms("--max-write-wait", w)?.max(1) as u64),
            None => Duration::from_secs(30),
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some(Tls::load(c, k)?),
            (None, None) => None,
            _ => {
                return Err(ApiError::config(
                    "TLS needs both tls_cert and tls_key (--tls-cert, --tls-key)",
                ));
            }
        };
        let calendar = match &self.calendar {
            None => sextant_diagnose::Calendar::nyse(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ApiError::config(format!("--calendar {}: {e}", path.display())))?;
                sextant_diagnose::Calendar::from_toml(&text)
                    .map_err(|e| ApiError::config(format!("--calendar {}: {e}", path.display())))?
            }
        };
        let diagnose_every = match self.diagnose_every.as_deref() {
            None => Some(Duration::from_secs(60)),
            Some("off") => None,
            Some(d) => Some(Duration::from_millis(
                duration_ms("--diagnose-every", d)? as u64
            )),
        };
        if let Some(url) = &self.alert_webhook
            && !url.starts_with("http://")
        {
            return Err(ApiError::config(format!(
                "--alert-webhook {url:?}: expected an http:// URL (put a relay such as \
                 Alertmanager in front of https receivers)"
            )));
        }
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Config {
            data_dir: data_dir.to_path_buf(),
            grpc_addr: addr(self.grpc_addr, 4317),
            otlp_http_addr: addr(self.otlp_http_addr, 4318),
            http_addr: addr(self.http_addr, 9090),
            db,
            query,
            auth_token: self.auth_token.filter(|t| !t.is_empty()),
            tls,
            max_body_bytes: self.max_body_bytes.unwrap_or(64 << 20),
            max_decompressed_bytes: self.max_decompressed_bytes.unwrap_or(256 << 20),
            max_concurrent_queries: self.max_concurrent_queries.unwrap_or(2 * cpus).max(1),
            max_concurrent_writes: self
                .max_concurrent_writes
                .unwrap_or((2 * cpus).max(4))
                .max(1),
            max_write_wait,
            max_series_per_write: self.max_series_per_write.unwrap_or(100_000),
            calendar: std::sync::Arc::new(calendar),
            diagnose_every,
            alert_webhook: self.alert_webhook,
        })
    }

    /// `self`'s values, falling back to `file`'s.
    fn or(self, file: ServeArgs) -> ServeArgs {
        ServeArgs {
            config: self.config,
            grpc_addr: self.grpc_addr.or(file.grpc_addr),
            otlp_http_addr: self.otlp_http_addr.or(file.otlp_http_addr),
            http_addr: self.http_addr.or(file.http_addr),
            durability: self.durability.or(file.durability),
            retention: self.retention.or(file.retention),
            ooo_window: self.ooo_window.or(file.ooo_window),
            auth_token: self.auth_token.or(file.auth_token),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes),
            max_decompressed_bytes: self.max_decompressed_bytes.or(file.max_decompressed_bytes),
            max_concurrent_queries: self.max_concurrent_queries.or(file.max_concurrent_queries),
            query_timeout: self.query_timeout.or(file.query_timeout),
            query_max_samples: self.query_max_samples.or(file.query_max_samples),
            query_max_series: self.query_max_series.or(file.query_max_series),
            max_concurrent_writes: self.max_concurrent_writes.or(file.max_concurrent_writes),
            max_write_wait: self.max_write_wait.or(file.max_write_wait),
            max_series_per_write: self.max_series_per_write.or(file.max_series_per_write),
            max_series: self.max_series.or(file.max_series),
            max_head_samples: self.max_head_samples.or(file.max_head_samples),
            frame_cache_mb: self.frame_cache_mb.or(file.frame_cache_mb),
            calendar: self.calendar.or(file.calendar),
            diagnose_every: self.diagnose_every.or(file.diagnose_every),
            alert_webhook: self.alert_webhook.or(file.alert_webhook),
            enable_feature: self.enable_feature.or(file.enable_feature),
        }
    }
}

/// Parses a durability setting: `always`, `never` or `interval:MS`.
pub fn parse_durability(what: &str, s: &str) -> Result<Durability, ApiError> {
    match s {
        "always" => Ok(Durability::Always),
        "never" => Ok(Durability::Never),
        _ => s
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse().ok())
            .map(|ms| Durability::Interval(std::time::Duration::from_millis(ms)))
            .ok_or_else(|| {
                ApiError::config(format!(
                    "{what} {s:?}: expected always, never or interval:MS"
                ))
            }),
    }
}

fn duration_ms(what: &str, s: &str) -> Result<i64, ApiError> {
    sextant_query::parse_duration(s)
        .filter(|&ms| ms > 0)
        .ok_or_else(|| {
            ApiError::config(format!(
                "{what} {s:?}: expected a duration like 15d, 2h or 30s"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sextant.toml");
        std::fs::write(
            &path,
            "http_addr = \"127.0.0.1:9999\"\nretention = \"15d\"\nquery_timeout = \"30s\"\nframe_cache_mb = 8\nmax_head_samples = 1000\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            query_timeout: Some("5s".into()),
            ..Default::default()
        };
        let c = args.resolve(Path::new("d")).unwrap();
        assert_eq!(c.http_addr.port(), 9999);
        assert_eq!(c.grpc_addr.port(), 4317);
        assert_eq!(c.db.retention, Some(Duration::from_secs(15 * 86400)));
        assert_eq!(c.query.timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.db.frame_cache_bytes, 8 << 20);
        assert_eq!(c.db.max_head_samples, 1000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_setting_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sextant.toml");
        std::fs::write(&path, "http_adr = \"x\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        let e = args.resolve(Path::new("d")).unwrap_err().to_string();
        assert!(e.contains("http_adr"), "{e}");
        let args = ServeArgs {
            retention: Some("forever".into()),
            ..Default::default()
        };
        let e = args.resolve(Path::new("d")).unwrap_err().to_string();
        assert!(e.contains("--retention"), "{e}");
        let args = ServeArgs {
            max_head_samples: Some(0),
            ..Default::default()
        };
        let e = args.resolve(Path::new("d")).unwrap_err().to_string();
        assert!(e.contains("--max-head-samples"), "{e}");
        // The diagnosis settings.
        let cal = dir.path().join("calendar.toml");
        std::fs::write(&cal, "time_zone = \"Mars/Olympus\"\n").unwrap();
        for (args, says) in [
            (
                ServeArgs {
                    alert_webhook: Some("https://events.example.com".into()),
                    ..Default::default()
                },
                "--alert-webhook",
            ),
            (
                ServeArgs {
                    diagnose_every: Some("often".into()),
                    ..Default::default()
                },
                "--diagnose-every",
            ),
            (
                ServeArgs {
                    calendar: Some(cal.clone()),
                    ..Default::default()
                },
                "Mars/Olympus",
            ),
            (
                ServeArgs {
                    calendar: Some(dir.path().join("missing.toml")),
                    ..Default::default()
                },
                "missing.toml",
            ),
            (
                ServeArgs {
                    enable_feature: Some(vec!["native-histograms".into(), "warp-drive".into()]),
                    ..Default::default()
                },
                "\"warp-drive\": unknown",
            ),
        ] {
            let e = args.resolve(Path::new("d")).unwrap_err().to_string();
            assert!(e.contains(says), "{says}: {e}");
        }
        let off = ServeArgs {
            diagnose_every: Some("off".into()),
            ..Default::default()
        };
        assert_eq!(off.resolve(Path::new("d")).unwrap().diagnose_every, None);
        let delayed = ServeArgs {
            enable_feature: Some(vec!["promql-delayed-name-removal".into()]),
            ..Default::default()
        };
        let query = delayed.resolve(Path::new("d")).unwrap().query;
        assert!(query.delayed_name_removal);
    }
}
