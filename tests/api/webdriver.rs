//! A minimal W3C WebDriver client (the few commands the browser test needs) over reqwest,
//! driving Debian's `chromedriver` with headless `chromium`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// Why the browser tests cannot run here: Chromium or chromedriver is not installed.
fn missing() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|bin| !std::path::Path::new(bin).exists())
        .map(|bin| format!("{bin} is not installed (apt-get install chromium chromium-driver)"))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; the error says what failed.
    pub async fn start() -> Result<Browser, String> {
        if let Some(why) = missing() {
            return Err(why);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("chromedriver does not start: {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        // Readiness, not a timing assertion: poll /status a bounded number of times.
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            client,
            _profile: profile,
        };
        if !ready {
            return Err("chromedriver did not answer /status".into());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ]
            }
        }}});
        let v = browser.call("POST", "/session", caps).await?;
        browser.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {v}"))?
            .to_string();
        Ok(browser)
    }

    /// [`Browser::start`] for a test that needs the browser: never skipped (the suite's script
    /// installs Chromium), a missing browser fails the test with what to install.
    pub async fn required() -> Browser {
        Browser::start().await.unwrap_or_else(|why| {
            panic!(
                "the browser test needs Chromium and chromedriver (scripts/test installs them): {why}"
            )
        })
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url).json(&body),
        };
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("webdriver {method} {path}: {status}: {v}"));
        }
        Ok(v["value"].clone())
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.call("POST", &self.at("/url"), json!({"url": url}))
            .await
            .map(drop)
    }

    pub async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .call(
                "POST",
                &self.at("/element"),
                json!({"using": "css selector", "value": css}),
            )
            .await?;
        v[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element {css}"))
    }

    pub async fn click(&self, css: &str) -> Result<(), String> {
        let id = self.find(css).await?;
        self.call("POST", &self.at(&format!("/element/{id}/click")), json!({}))
            .await
            .map(drop)
    }

    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let id = self.find(css).await?;
        self.call(
            "POST",
            &self.at(&format!("/element/{id}/value")),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    pub async fn is_selected(&self, css: &str) -> Result<bool, String> {
        let id = self.find(css).await?;
        let v = self
            .call(
                "GET",
                &self.at(&format!("/element/{id}/selected")),
                Value::Null,
            )
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// The element's rendered position and size (`x`, `y`, `width`, `height`).
    pub async fn rect(&self, css: &str) -> Result<Value, String> {
        let id = self.find(css).await?;
        self.call("GET", &self.at(&format!("/element/{id}/rect")), Value::Null)
            .await
    }

    /// Resizes the browser window (in CSS pixels).
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<(), String> {
        self.call(
            "POST",
            &self.at("/window/rect"),
            json!({"width": width, "height": height}),
        )
        .await
        .map(drop)
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn execute(&self, script: &str) -> Result<Value, String> {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// The computed value of CSS `property` on the element.
    pub async fn css(&self, css: &str, property: &str) -> Result<String, String> {
        let id = self.find(css).await?;
        let v = self
            .call(
                "GET",
                &self.at(&format!("/element/{id}/css/{property}")),
                Value::Null,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The element's rendered text.
    pub async fn text(&self, css: &str) -> Result<String, String> {
        let id = self.find(css).await?;
        let v = self
            .call("GET", &self.at(&format!("/element/{id}/text")), Value::Null)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub async fn source(&self) -> Result<String, String> {
        let v = self.call("GET", &self.at("/source"), Value::Null).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The page source once it contains `text`, or the last one read when `within` runs out
    /// (a click on a submit button does not wait for the next page).
    pub async fn source_with(
        &self,
        text: &str,
        within: std::time::Duration,
    ) -> Result<String, String> {
        let until = std::time::Instant::now() + within;
        loop {
            let page = self.source().await?;
            if page.contains(text) || std::time::Instant::now() >= until {
                return Ok(page);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn quit(mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.at(""), Value::Null).await;
            self.session.clear();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
