//! Headless Chromium driven over WebDriver: Debian's `chromium` through
//! its `chromedriver` (package `chromium-driver`), so the UI is tested in
//! the browser users have, and nothing downloads a browser at test time.
//! A small client over the W3C protocol's JSON is all the tests need.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver gives element references under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The longest a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(60);

/// A browser session; the driver is stopped when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::blocking::Client,
    /// Where screenshots go (`target/tmp/ui-screenshots/`).
    pub shots: PathBuf,
}

impl Browser {
    /// Starts `chromedriver` and a headless `chromium` session with a
    /// 1280 × 1000 window.
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let root = format!("http://127.0.0.1:{port}");
        let t0 = Instant::now();
        while http.get(format!("{root}/status")).send().is_err() {
            assert!(t0.elapsed() < PATIENCE, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--hide-scrollbars", "--force-device-scale-factor=1"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let r = send(http.post(format!("{root}/session")), &caps);
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            driver,
            base: format!("{root}/session/{id}"),
            http,
            shots,
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        };
        let r = send(req, &body);
        if let Some(err) = r["value"]["error"].as_str() {
            panic!(
                "webdriver {method} {path}: {err}: {}",
                r["value"]["message"]
            );
        }
        r["value"].clone()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Waits until `script` returns something truthy, and returns it.
    pub fn wait_for(&self, what: &str, script: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.js(script, json!([]));
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            assert!(
                t0.elapsed() < PATIENCE,
                "waited {PATIENCE:?} for {what}; the page shows:\n{}",
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the page marks view `view` ready (`data-ready`).
    pub fn wait_ready(&self, view: &str) {
        self.wait_for(
            &format!("the {view} view"),
            &format!("return document.body.dataset.ready === {view:?}"),
        );
    }

    /// Waits until an element matching `css` exists, and returns its
    /// reference.
    pub fn find(&self, css: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let r = send(
                self.http.post(format!("{}/element", self.base)),
                &json!({"using": "css selector", "value": css}),
            );
            if let Some(e) = r["value"][ELEMENT].as_str() {
                return json!({ ELEMENT: e });
            }
            assert!(
                t0.elapsed() < PATIENCE,
                "no element {css}; the page shows:\n{}",
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element matching `css` (as a user would: the browser
    /// scrolls to it and dispatches the events).
    pub fn click(&self, css: &str) {
        let e = self.find(css);
        let id = e[ELEMENT].as_str().unwrap();
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    /// Types `text` into the element matching `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        let id = e[ELEMENT].as_str().unwrap();
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.js(
            "return document.querySelectorAll(arguments[0]).length;",
            json!([css]),
        )
        .as_u64()
        .unwrap_or(0) as usize
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// When the page showed its data, ms after navigation began (the
    /// `sextant:ready` mark the UI sets).
    pub fn ready_ms(&self) -> f64 {
        self.js(
            "const m = performance.getEntriesByName('sextant:ready'); return m.length ? m[0].startTime : -1;",
            json!([]),
        )
        .as_f64()
        .unwrap_or(-1.0)
    }

    /// A PNG of the whole page, to `target/tmp/ui-screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let r = self.call(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": true}}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// What the page logged at SEVERE level since the last call (console
    /// errors, uncaught exceptions, failed loads).
    pub fn errors(&self) -> Vec<String> {
        self.call("POST", "/se/log", json!({"type": "browser"}))
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.base).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Sends a WebDriver command (`body` is sent unless null) and parses the
/// answer.
fn send(req: reqwest::blocking::RequestBuilder, body: &Value) -> Value {
    let req = if body.is_null() {
        req
    } else {
        req.header("content-type", "application/json")
            .body(body.to_string())
    };
    let text = req.send().unwrap().text().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("webdriver answered {text:?}: {e}"))
}

/// Debian's browser binary.
fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or(&"chromium")
        .to_string()
}
