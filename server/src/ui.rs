//! The web UI: a page, its style and its script modules, compiled into
//! the binary (no Node.js, no build step, nothing to install). The page
//! reads the public HTTP API; see `docs/ui.md`.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `ui/` but the page: its path under `/ui/`, its type
/// and its text. A test checks the list matches the directory.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../ui/app.css")),
    ("js/api.js", JS, include_str!("../ui/js/api.js")),
    ("js/chart.js", JS, include_str!("../ui/js/chart.js")),
    ("js/explore.js", JS, include_str!("../ui/js/explore.js")),
    ("js/incident.js", JS, include_str!("../ui/js/incident.js")),
    ("js/logs.js", JS, include_str!("../ui/js/logs.js")),
    ("js/main.js", JS, include_str!("../ui/js/main.js")),
    ("js/map.js", JS, include_str!("../ui/js/map.js")),
    ("js/now.js", JS, include_str!("../ui/js/now.js")),
    ("js/service.js", JS, include_str!("../ui/js/service.js")),
    ("js/timerange.js", JS, include_str!("../ui/js/timerange.js")),
    ("js/trace.js", JS, include_str!("../ui/js/trace.js")),
];

const INDEX: &str = include_str!("../ui/index.html");

/// Set to the `server/ui` directory, the files are read from it at each
/// request instead: edit, reload, no rebuild (for working on the UI).
const DEV_DIR_ENV: &str = "SEXTANT_UI_DIR";

/// The text of `name` (`index.html`, or a path under `/ui/`): the
/// compiled-in copy, or the file under `SEXTANT_UI_DIR` when it is set.
fn text(name: &str, compiled: &'static str) -> std::borrow::Cow<'static, str> {
    match std::env::var_os(DEV_DIR_ENV) {
        Some(dir) => std::fs::read_to_string(std::path::Path::new(&dir).join(name))
            .map_or(compiled.into(), Into::into),
        None => compiled.into(),
    }
}

fn asset(kind: &'static str, body: std::borrow::Cow<'static, str>) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Whether `path` is the page or one of its assets: these hold no data,
/// so they are served without the bearer token (the page asks for it).
pub fn is_asset(path: &str) -> bool {
    path == "/"
        || path
            .strip_prefix("/ui/")
            .is_some_and(|p| ASSETS.iter().any(|(name, _, _)| *name == p))
}

/// `/` and its assets under `/ui/`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset(HTML, text("index.html", INDEX)) }),
        )
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>| async move {
                match ASSETS.iter().find(|(name, _, _)| *name == path) {
                    Some((name, kind, body)) => asset(kind, text(name, body)),
                    None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every file of `ui/` is compiled in, and nothing else is listed.
    #[test]
    fn the_asset_list_is_the_directory() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if rel != "index.html" {
                        on_disk.push(rel);
                    }
                }
            }
        }
        on_disk.sort();
        let listed: Vec<String> = ASSETS.iter().map(|(n, _, _)| n.to_string()).collect();
        assert_eq!(listed, on_disk);
    }
}
