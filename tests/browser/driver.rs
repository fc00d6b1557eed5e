//! Chromium through WebDriver: finding the browser, one chromedriver per session, and the few
//! gestures the scenarios need, each waiting for its condition with a deadline (never a fixed
//! sleep).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use thirtyfour::components::SelectElement;
use thirtyfour::prelude::*;

/// How long any one condition may take before the scenario fails.
const PATIENCE: Duration = Duration::from_secs(15);
const ENV_REQUIRE: &str = "TESSERA_REQUIRE_BROWSER";

/// Where screenshots go.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact folder");
    dir
}

pub struct Browser {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn first_existing(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

impl Browser {
    /// Chromium and chromedriver, or None (after saying why) when this machine has none and
    /// the run does not require them.
    pub fn find() -> Option<Browser> {
        let chromium = first_existing(
            "TESSERA_CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let chromedriver = first_existing("TESSERA_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Some(Browser {
                chromium,
                chromedriver,
            }),
            _ if std::env::var_os(ENV_REQUIRE).is_some() => {
                panic!(
                    "{ENV_REQUIRE} is set but Chromium or chromedriver is missing \
                     (apt-get install chromium chromium-driver)"
                )
            }
            _ => {
                eprintln!(
                    "skipped: no Chromium here (install chromium and chromium-driver, or set \
                     {ENV_REQUIRE} to make this a failure)"
                );
                None
            }
        }
    }

    /// Starts chromedriver and a headless Chromium at a desktop size, in English.
    pub async fn open(&self, name: &str, base: &str) -> Session {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let process = Command::new(&self.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let chromedriver = ChromeDriverProcess(process);
        let url = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + PATIENCE;
        let client = reqwest::Client::new();
        while client.get(format!("{url}/status")).send().await.is_err() {
            assert!(Instant::now() < until, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&self.chromium.to_string_lossy())
            .expect("binary");
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--lang=en-US",
            "--window-size=1280,900",
        ] {
            caps.add_arg(arg).expect("argument");
        }
        caps.add_experimental_option(
            "prefs",
            serde_json::json!({"intl.accept_languages": "en-US,en"}),
        )
        .expect("prefs");
        let driver = WebDriver::new(&url, caps)
            .await
            .expect("a Chromium session");
        Session {
            driver,
            base: base.trim_end_matches('/').to_owned(),
            name: name.to_owned(),
            _chromedriver: std::sync::Arc::new(chromedriver),
        }
    }
}

/// Stops chromedriver when the session ends, however it ends.
struct ChromeDriverProcess(Child);

impl Drop for ChromeDriverProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser session; clones share it, and chromedriver stops with the last one.
#[derive(Clone)]
pub struct Session {
    pub driver: WebDriver,
    base: String,
    name: String,
    _chromedriver: std::sync::Arc<ChromeDriverProcess>,
}

impl Session {
    pub async fn goto(&self, path: &str) {
        self.driver
            .goto(format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Fills and sends the sign-in form.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.type_into("#l-user", email).await;
        self.type_into("#l-pass", password).await;
        self.click("form[action='/login'] button[type='submit']")
            .await;
    }

    pub async fn shot(&self, what: &str) {
        let path = artifacts().join(format!("{}-{what}.png", self.name));
        self.driver
            .screenshot(&path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {what}: {e}"));
    }

    /// Waits for an element matching `css`, shown or not.
    pub async fn find(&self, css: &str) -> WebElement {
        self.driver
            .query(By::Css(css))
            .wait(PATIENCE, Duration::from_millis(50))
            .first()
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn wait_visible(&self, css: &str) -> WebElement {
        self.driver
            .query(By::Css(css))
            .wait(PATIENCE, Duration::from_millis(50))
            .and_displayed()
            .first()
            .await
            .unwrap_or_else(|e| panic!("no visible {css}: {e}"))
    }

    /// Clicks the first visible element matching `css` once it can be clicked.
    pub async fn click(&self, css: &str) {
        let element = self.wait_visible(css).await;
        self.click_element(&element, css).await;
    }

    pub async fn click_xpath(&self, xpath: &str) {
        let element = self
            .driver
            .query(By::XPath(xpath))
            .wait(PATIENCE, Duration::from_millis(50))
            .and_displayed()
            .first()
            .await
            .unwrap_or_else(|e| panic!("no visible {xpath}: {e}"));
        self.click_element(&element, xpath).await;
    }

    async fn click_element(&self, element: &WebElement, what: &str) {
        let until = Instant::now() + PATIENCE;
        loop {
            match element.click().await {
                Ok(()) => return,
                // Something (an animation, a closing menu) may cover it for a moment.
                Err(e) if Instant::now() < until => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {what}: {e}"),
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_visible(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Scrolls the page so the element is in the middle of the screen (for a screenshot).
    pub async fn scroll_to(&self, element: &WebElement) {
        self.driver
            .execute(
                "arguments[0].scrollIntoView({block: 'center'})",
                vec![element.to_json().expect("element")],
            )
            .await
            .expect("scroll");
    }

    /// Chooses a file in a file input, as the file dialog does (the path must be absolute).
    pub async fn upload(&self, css: &str, file: &Path) {
        assert!(file.is_absolute(), "{} is not absolute", file.display());
        let input = self.find(css).await;
        input
            .send_keys(file.to_string_lossy().as_ref())
            .await
            .unwrap_or_else(|e| panic!("choose {} in {css}: {e}", file.display()));
    }

    /// Picks the option showing `label` in the select matching `css`, by clicking it.
    pub async fn choose(&self, css: &str, label: &str) {
        let element = self.wait_visible(css).await;
        SelectElement::new(&element)
            .await
            .unwrap_or_else(|e| panic!("{css} is not a select: {e}"))
            .select_by_visible_text(label)
            .await
            .unwrap_or_else(|e| panic!("choose {label:?} in {css}: {e}"));
    }

    /// Types a date (`YYYY-MM-DD`) into a date input from the keyboard, as the browser's
    /// English (US) locale takes it (month, day, year), and waits for the input to hold it.
    pub async fn type_date(&self, css: &str, date: &str) {
        let parts: Vec<&str> = date.split('-').collect();
        let [year, month, day] = parts[..] else {
            panic!("{date} is not YYYY-MM-DD");
        };
        // Focus puts the caret in the first part (the month), where a click might not.
        let input = self.wait_visible(css).await;
        self.driver
            .execute(
                "arguments[0].focus()",
                vec![input.to_json().expect("element")],
            )
            .await
            .expect("focus");
        self.keys(format!("{month}{day}{year}")).await;
        self.wait_script_or(
            &format!(
                "return document.querySelector({}).value === {}",
                serde_json::to_string(css).expect("json"),
                serde_json::to_string(date).expect("json")
            ),
            &format!("{css} to hold {date}"),
        )
        .await;
    }

    pub async fn clear(&self, css: &str) {
        let element = self.wait_visible(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    }

    /// Clicks the main form's submit button.
    pub async fn submit_form(&self) {
        self.click("main form[data-validate] button[type='submit'], main form button.primary[type='submit']")
            .await;
    }

    /// The texts of every element matching `css`, once there is at least one.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        self.find(css).await;
        let mut out = Vec::new();
        for element in self
            .driver
            .find_all(By::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
        {
            out.push(element.text().await.unwrap_or_default());
        }
        out
    }

    /// Waits until an element matching `css` contains `text`.
    pub async fn wait_text(&self, css: &str, text: &str) {
        let script = format!(
            "return Array.from(document.querySelectorAll({css})).some(e => e.textContent.includes({text}))",
            css = serde_json::to_string(css).expect("json"),
            text = serde_json::to_string(text).expect("json"),
        );
        self.wait_script_or(&script, &format!("{css} to contain {text:?}"))
            .await;
    }

    /// Waits until a script returns true.
    pub async fn wait_script(&self, script: &str) {
        self.wait_script_or(script, script).await;
    }

    async fn wait_script_or(&self, script: &str, what: &str) {
        let until = Instant::now() + PATIENCE;
        loop {
            let done = self
                .driver
                .execute(script, Vec::<Value>::new())
                .await
                .map(|r| r.json() == &Value::Bool(true))
                .unwrap_or(false);
            if done {
                return;
            }
            if Instant::now() >= until {
                self.shot("timeout").await;
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn script(&self, script: &str) -> Value {
        self.driver
            .execute(script, Vec::<Value>::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
            .json()
            .clone()
    }

    pub async fn path(&self) -> String {
        self.driver
            .current_url()
            .await
            .expect("current url")
            .path()
            .to_owned()
    }

    /// Waits until the page's path (without the query) is `path`.
    pub async fn wait_path(&self, path: &str) {
        let script = format!(
            "return location.pathname === {} && document.readyState === 'complete'",
            serde_json::to_string(path).expect("json")
        );
        self.wait_script_or(&script, &format!("the page {path}"))
            .await;
    }

    /// Waits until the address (decoded) contains `part`.
    pub async fn wait_url_contains(&self, part: &str) {
        let script = format!(
            "return decodeURIComponent(location.href).includes({}) && document.readyState === 'complete'",
            serde_json::to_string(part).expect("json")
        );
        self.wait_script_or(&script, &format!("an address with {part}"))
            .await;
    }

    /// Emulates a phone of this size (a mobile viewport with touch and overlay scrollbars, as
    /// on a real phone), from the next page load on.
    pub async fn phone(&self, width: u32, height: u32) {
        let cdp = self.driver.cdp();
        cdp.send_raw(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": width, "height": height, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await
        .expect("device metrics");
        cdp.send_raw(
            "Emulation.setTouchEmulationEnabled",
            serde_json::json!({"enabled": true, "maxTouchPoints": 5}),
        )
        .await
        .expect("touch");
    }

    /// Opens a field's inline editor from the keyboard (focus, Enter), as the record page and
    /// the list offer it, and returns the editor's input.
    pub async fn edit_inline(&self, css: &str) -> WebElement {
        let cell = self.wait_visible(css).await;
        self.driver
            .execute(
                "arguments[0].focus()",
                vec![cell.to_json().expect("element")],
            )
            .await
            .expect("focus");
        self.driver
            .action_chain()
            .send_keys(Key::Enter)
            .perform()
            .await
            .expect("enter");
        let editor = format!("{css} :is(input, select, textarea):not([type='hidden'])");
        self.wait_visible(&editor).await;
        self.wait_script_or(
            &format!(
                "return document.activeElement && document.activeElement.matches({})",
                serde_json::to_string(&editor).expect("json")
            ),
            "the editor to take focus",
        )
        .await;
        self.find(&editor).await
    }

    /// Types into whatever has the focus, as a keyboard does.
    pub async fn keys(&self, text: impl Into<thirtyfour::TypingData>) {
        self.driver
            .action_chain()
            .send_keys(text)
            .perform()
            .await
            .expect("keys");
    }

    /// The page has no horizontal scrolling at this width.
    pub async fn assert_fits(&self, width: u32) {
        let sizes = self
            .script("return [document.documentElement.scrollWidth, innerWidth, scrollX]")
            .await;
        assert_eq!(sizes[2], 0, "the page is scrolled sideways: {sizes}");
        let scroll = sizes[0].as_u64().unwrap_or(u64::MAX);
        assert!(
            scroll <= u64::from(width) + 1,
            "the page scrolls sideways at {width} px: {sizes}"
        );
    }

    /// Drags with the mouse in small steps, as a person does (Sortable needs the moves).
    pub async fn drag(&self, item: &WebElement, target: &WebElement) {
        self.driver
            .action_chain()
            .move_to_element_center(item)
            .click_and_hold()
            .move_by_offset(6, 6)
            .move_by_offset(6, 6)
            .move_to_element_center(target)
            .move_by_offset(0, 4)
            .move_by_offset(0, 4)
            .release()
            .perform()
            .await
            .expect("drag");
    }
}
