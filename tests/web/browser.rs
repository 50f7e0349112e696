//! The browser side of the web test: chromedriver, axe-core, screenshots, and reading,
//! clicking and typing with bounded waits (no sleeps as synchronisation).

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// chromedriver on a free loopback port, killed on drop.
pub(crate) struct Driver {
    _child: tokio::process::Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let port = fmn_emulator::free_port().unwrap();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (run localstack/bootstrap.sh: Debian's chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Driver { _child: child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {url}");
    }

    pub(crate) async fn browser(&self, javascript: bool) -> Client {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1200,1000",
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false");
        }
        let caps = json!({"goog:chromeOptions": {"args": args, "binary": "/usr/bin/chromium"}});
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

/// Checks with axe the page `c` shows with JavaScript off. WebDriver's scripts cannot run
/// where the page's JavaScript is off, so `auditor`, a session with JavaScript on, shows the
/// same document as `c` sees it: the page's HTML fetched again with `c`'s cookies, with its
/// scripts removed (so none runs and the DOM is the server's, as with JavaScript off), written
/// into a page of the same origin so the same stylesheet applies; axe then runs on that.
pub(crate) async fn check_page_nojs(
    c: &Client,
    auditor: &Client,
    name: &str,
    report: &mut Vec<String>,
) {
    let url = c.current_url().await.unwrap();
    let cookies = c.get_all_cookies().await.unwrap();
    let cookie = cookies
        .iter()
        .map(|k| format!("{}={}", k.name(), k.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let html = reqwest::Client::new()
        .get(url.as_str())
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let html = without_scripts(&html);
    auditor
        .goto(&url.origin().ascii_serialization())
        .await
        .unwrap();
    auditor
        .execute_async(
            "const [html, done] = arguments;
             document.open(); document.write(html); document.close();
             const loaded = () => [...document.querySelectorAll('link[rel=stylesheet]')]
               .every(l => l.sheet);
             (function wait(n) { if (loaded() || n === 0) done(loaded()); else
               setTimeout(() => wait(n - 1), 20); })(250);",
            vec![Value::String(html)],
        )
        .await
        .unwrap();
    assert_eq!(
        text(auditor, "h1").await,
        text(c, "h1").await,
        "the auditor shows {name}"
    );
    let violations = axe(auditor).await;
    assert!(
        violations.is_empty(),
        "axe on {name} ({url}, as JavaScript off shows it): {violations:#?}"
    );
    report.push(format!("{name}: no serious or critical violation"));
}

/// `html` without its `<script>` elements.
fn without_scripts(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find("</script>") {
            Some(end) => &rest[start + end + "</script>".len()..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// axe-core on the page: the serious and critical violations.
pub(crate) async fn axe(c: &Client) -> Vec<String> {
    let source = std::fs::read_to_string(
        fmn_local::repo_root().join(".node/node_modules/axe-core/axe.min.js"),
    )
    .expect("axe-core (run localstack/bootstrap.sh)");
    c.execute(&format!("{source}\nreturn true;"), vec![])
        .await
        .unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.help + ' at ' +
                      v.nodes.map(n => n.target.join(' ')).join(', '))));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap_or_default()
}

/// Checks the page with axe and keeps a screenshot of it in docs/screenshots/.
pub(crate) async fn check_page(c: &Client, name: &str, report: &mut Vec<String>) {
    let violations = axe(c).await;
    let url = c.current_url().await.unwrap();
    assert!(
        violations.is_empty(),
        "axe on {name} ({url}): {violations:#?}"
    );
    report.push(format!("{name}: no serious or critical violation"));
    let png = c.screenshot().await.unwrap();
    let dir = fmn_local::repo_root().join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

pub(crate) async fn text(c: &Client, css: &str) -> String {
    // Right after a click the old page may still be in place or going away: retry,
    // a bounded number of times.
    let mut last = None;
    for _ in 0..40 {
        match c.find(Locator::Css(css)).await {
            Ok(e) => match e.text().await {
                Ok(t) => return t,
                Err(err) => last = Some(err.to_string()),
            },
            Err(err) => last = Some(err.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no text at {css}: {last:?}");
}

/// The text of `css` once it reads `want`: after a click that submits a form, the old page
/// (which has the same element) may still be in place for a moment. Bounded; returns the last
/// text read, for the assertion's message.
pub(crate) async fn text_becomes(c: &Client, css: &str, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..40 {
        last = text(c, css).await;
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Clicks a button that submits a form, and waits (bounded) until the page it was on is
/// gone: every read after it then sees the page the form led to, not the old one.
pub(crate) async fn click(c: &Client, xpath: &str) {
    let button = c.find(Locator::XPath(xpath)).await.unwrap();
    button.click().await.unwrap();
    for _ in 0..100 {
        // A stale element (an error) means the old document has been replaced.
        if button.is_displayed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Presses `key` on whatever has the focus.
pub(crate) async fn press(c: &Client, key: fantoccini::key::Key) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let k: char = key.into();
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: k })
        .then(KeyAction::Up { value: k });
    c.perform_actions(keys).await.unwrap();
}

/// Keyboard alone: presses Tab (at most 80 times) until the focused element's id, text or
/// label satisfies `want`, checks that the focus is visible there, and presses Enter.
pub(crate) async fn tab_and_enter(c: &Client, what: &str, want: impl Fn(&str) -> bool) {
    use fantoccini::key::Key;
    for _ in 0..80 {
        press(c, Key::Tab).await;
        let e = c.active_element().await.unwrap();
        let label = e.attr("aria-label").await.unwrap().unwrap_or_default();
        let id = e.attr("id").await.unwrap().unwrap_or_default();
        let text = e.text().await.unwrap_or_default();
        if want(label.trim()) || want(id.trim()) || want(text.trim()) {
            let outline = e.css_value("outline-style").await.unwrap();
            assert_ne!(outline, "none", "no visible focus on {what}");
            let stale = e.clone();
            press(c, Key::Enter).await;
            for _ in 0..100 {
                if stale.is_displayed().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return;
        }
    }
    panic!("{what} is not reachable with Tab");
}

pub(crate) async fn fill(c: &Client, id: &str, value: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Polls `check` every 250 ms, at most `tries` times.
pub(crate) async fn eventually<F: AsyncFnMut() -> bool>(tries: usize, mut check: F) -> bool {
    for _ in 0..tries {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
