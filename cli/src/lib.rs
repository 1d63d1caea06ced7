//! The `sextant` binary's subcommands, one module each (`serve` is the
//! `sextant_server` crate, `demo` runs `sextant_demo` against it).

pub mod bench;
pub mod demo;
pub mod diagnose;
pub mod import;
pub mod openmetrics;
pub mod promql_test;
pub mod query;
pub mod repair;
pub mod stats;

/// Errors of the command-line tools.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The storage engine refused.
    #[error(transparent)]
    Storage(#[from] sextant_storage::Error),
    /// The WAL tools refused.
    #[error(transparent)]
    Wal(#[from] sextant_wal::Error),
    /// A query did not parse.
    #[error(transparent)]
    QueryParse(#[from] sextant_query::ParseError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] sextant_query::Error),
    /// The server failed to start or stopped with an error.
    #[error(transparent)]
    Server(#[from] sextant_server::error::ApiError),
    /// The demo's options or feed failed.
    #[error(transparent)]
    Demo(#[from] sextant_demo::Error),
    /// Reading an input file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// An input line that does not parse.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The command ran but what it checked failed (scripts and CI read
    /// the exit status).
    #[error("{0}")]
    Failed(String),
}

/// Result of a subcommand.
pub type CliResult = Result<(), CliError>;

/// Opens a data directory for a one-shot command (no background
/// maintenance: the command reads and exits). Refused while a server
/// holds the directory.
pub fn open_data_dir(data_dir: &std::path::Path) -> Result<sextant_storage::Db, CliError> {
    Ok(sextant_storage::Db::open(
        data_dir,
        sextant_storage::Options {
            background: false,
            ..sextant_storage::Options::default()
        },
    )?)
}

/// The flags of a one-shot command that can ask a running server instead
/// of opening the data directory.
#[derive(clap::Args, Debug, Default)]
pub struct Remote {
    /// A running server's HTTP API (`http://127.0.0.1:9090`); without it
    /// the data directory is opened directly (not while a server has it).
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token for `--url`.
    #[arg(long, env = "SEXTANT_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// POSTs `form` (the pairs with a value) to `path` of the server at `url`
/// (with the bearer `token`) and returns the answer's body, whatever its
/// status: the API's JSON says what went wrong.
pub fn post_form(
    url: &str,
    path: &str,
    form: &[(&str, Option<&str>)],
    token: Option<&str>,
) -> Result<String, CliError> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().filter_map(|&(k, v)| Some((k, v?))))
        .finish();
    let endpoint = format!("{}{path}", url.trim_end_matches('/'));
    let mut req = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| CliError::Usage(format!("HTTP client: {e}")))?
        .post(&endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .map_err(|e| CliError::Usage(format!("cannot reach {endpoint}: {e}")))?;
    resp.text()
        .map_err(|e| CliError::Usage(format!("reading the answer of {endpoint}: {e}")))
}
