//! The web UI is served by the binary itself: the page, its script and
//! its style, with their types, under the same listener as the API. (The
//! browser tests of issue 22 are still to come; these check the serving.)

mod common;

use common::{Server, client};

#[test]
fn the_page_and_its_assets_are_served_from_the_binary() {
    let s = Server::start(&["--diagnose-every", "off"]);
    for (path, kind, holds) in [
        ("/", "text/html", "<title>Sextant</title>"),
        ("/ui/app.js", "text/javascript", "/api/v1/sextant/diagnose"),
        ("/ui/app.css", "text/css", "prefers-color-scheme: dark"),
    ] {
        let r = client().get(s.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert!(r.text().unwrap().contains(holds), "{path}");
    }
    let r = client().get(s.url("/ui/missing.js")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
