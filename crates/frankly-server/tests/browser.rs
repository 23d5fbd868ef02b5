//! The review UI in a real browser (headless Chromium through
//! chromedriver): sign in, claim, see media blurred, reveal with the `r` key,
//! decide, and find it all in the audit log as an admin.
//!
//! Skipped with a notice when `chromedriver` or `chromium` is missing
//! (`.ci/run` installs Debian's `chromium` and `chromium-driver`).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::franked::{conversation, seal, with_attachments};
use common::{Engine, Harness};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use frankly_report::Reason;
use frankly_review::Role;

struct Driver(Child);

impl Drop for Driver {
    /// Stops chromedriver and the browsers it started (its process group),
    /// even when the test failed before closing the session.
    ///
    /// Through the system call, never the `kill` program: procps-ng 4.0.2
    /// (Debian 12) reads `kill -9 -20559` as `kill(-2, SIGKILL)`, the first
    /// digit only, so a process group id starting with 1 became
    /// `kill(-1, SIGKILL)`: every process the user may signal.
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.0);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(name: &str, candidates: &[&str]) -> Option<String> {
    candidates.iter().find(|c| std::path::Path::new(c).exists()).map(|c| (*c).to_string()).or_else(|| {
        let out = Command::new("which").arg(name).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    })
}

async fn browser() -> Option<(Driver, Client)> {
    let (Some(driver), Some(chromium)) = (
        find("chromedriver", &["/usr/bin/chromedriver"]),
        find("chromium", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
    ) else {
        common::missing("chromedriver or chromium not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(driver);
    command.arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().unwrap();
    let guard = Driver(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-quic", format!("--user-data-dir={}", profile.display())],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    Some((guard, client))
}

async fn sign_in(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("input[name=username]")).await.unwrap().send_keys(user).await.unwrap();
    c.find(Locator::Css("input[name=password]")).await.unwrap().send_keys("a long test password").await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::XPath("//h1[text()='Queues']")).await.unwrap();
}

async fn press(c: &Client, key: char) {
    let keys =
        KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.unwrap();
}

async fn filter_of(c: &Client) -> String {
    c.find(Locator::Css("img.media")).await.unwrap().css_value("filter").await.unwrap()
}

/// The image's filter once its CSS transition has settled on `want(filter)`.
async fn settled_filter(c: &Client, want: impl Fn(&str) -> bool) -> String {
    let mut filter = filter_of(c).await;
    for _ in 0..40 {
        if want(&filter) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        filter = filter_of(c).await;
    }
    filter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_reviews_a_report_in_chromium() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let Some((_driver, c)) = browser().await else { return };
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let mut msgs = conversation(&h.keyring(), "conv", "mallory", "bob", 4, now);
    let clip = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../frankly-demo/assets/doorknob-half.mp4"),
    )
    .unwrap();
    let photo = common::photo();
    with_attachments(&h.keyring(), &mut msgs, &[("image/jpeg", &photo), ("video/mp4", &clip)], now + 10);
    let (_, envelope) = seal(msgs, Reason::Harassment, &h.server_key());
    assert_eq!(h.post_report(envelope).await.0, axum::http::StatusCode::ACCEPTED);
    for (name, role) in [("mia", Role::Moderator), ("ada", Role::Admin)] {
        frankly_server::create_user(h.state.db(), "test", name, "a long test password", role).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(frankly_server::serve(h.state.clone(), listener, std::future::pending()));

    sign_in(&c, &base, "mia").await;
    // Claim with the keyboard: `c` takes the first queue with work.
    press(&c, 'c').await;
    c.wait().for_element(Locator::Css("ol.messages")).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert!(url.path().starts_with("/reports/"), "{url}");
    let messages = c.find_all(Locator::Css("li.message")).await.unwrap();
    assert_eq!(messages.len(), 4);
    assert!(messages[3].text().await.unwrap().contains("verified"));
    assert!(c.find(Locator::Css("li.message.reported")).await.unwrap().text().await.unwrap().contains("look at this"));

    // The image is blurred and grayscale until revealed.
    let img = c.find(Locator::Css("img.media")).await.unwrap();
    let natural: serde_json::Value =
        c.execute("return arguments[0].naturalWidth", vec![serde_json::to_value(&img).unwrap()]).await.unwrap();
    assert!(natural.as_u64().unwrap() > 0, "the image loaded");
    let filter = filter_of(&c).await;
    assert!(filter.contains("blur(28px)") && filter.contains("grayscale(1)"), "{filter}");
    press(&c, 'r').await;
    assert_eq!(settled_filter(&c, |f| f == "none").await, "none", "revealed with r");
    press(&c, 'r').await;
    // The filter eases back over a CSS transition: wait for its end state.
    let hidden = settled_filter(&c, |f| f.contains("blur(28px)") && f.contains("grayscale(1)")).await;
    assert!(hidden.contains("blur(28px)") && hidden.contains("grayscale(1)"), "hidden again with r: {hidden}");

    // The video: muted, blurred like the image, with its strip of frames;
    // a mark on its timeline seeks the video to that frame.
    let video = c.find(Locator::Css("video.media")).await.unwrap();
    let arg = vec![serde_json::to_value(&video).unwrap()];
    let muted = c.execute("return arguments[0].muted", arg.clone()).await.unwrap();
    assert_eq!(muted, serde_json::Value::Bool(true), "video starts muted");
    let filter = video.css_value("filter").await.unwrap();
    assert!(filter.contains("blur(28px)") && filter.contains("grayscale(1)"), "video blurred: {filter}");
    let strip = c.find(Locator::Css(".strip img")).await.unwrap();
    let loaded = c
        .execute(
            "return arguments[0].complete && arguments[0].naturalWidth",
            vec![serde_json::to_value(&strip).unwrap()],
        )
        .await
        .unwrap();
    assert!(loaded.as_u64().unwrap_or(0) > 0, "the frame strip loaded: {loaded}");
    let marks = c.find_all(Locator::Css("ol.timeline li")).await.unwrap();
    assert!(marks.len() >= 2, "one mark per hashed frame");
    let seconds: f64 = marks[1].attr("data-seconds").await.unwrap().unwrap().parse().unwrap();
    assert!(seconds > 0.5, "the second hashed frame is a second in: {seconds}");
    marks[1].clone().click().await.unwrap();
    let at = c.execute("return arguments[0].currentTime", arg).await.unwrap().as_f64().unwrap();
    assert!((at - seconds).abs() < 0.01, "seeked to {at}, wanted {seconds}");

    // Decide: `d` jumps to the form.
    press(&c, 'd').await;
    let form = c.form(Locator::Css("form.decision")).await.unwrap();
    c.find(Locator::Id("action")).await.unwrap().select_by_value("remove").await.unwrap();
    form.set_by_name("facts", "Insults in the last two messages, verified by franking.").await.unwrap();
    form.set_by_name("ground_reference", "Community guidelines 4.2").await.unwrap();
    c.find(Locator::Id("submit-decision")).await.unwrap().click().await.unwrap();
    let notice = c.wait().for_element(Locator::Css("p.notice")).await.unwrap().text().await.unwrap();
    assert_eq!(notice, "Decision recorded.");

    // The admin sees the whole story in the audit log, and the chain verifies.
    c.find(Locator::XPath("//button[text()='Sign out']")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("sign-in")).await.unwrap();
    sign_in(&c, &base, "ada").await;
    c.goto(&format!("{base}/admin/audit")).await.unwrap();
    let chain = c.find(Locator::Id("chain")).await.unwrap().text().await.unwrap();
    assert!(chain.starts_with("Hash chain verified"), "{chain}");
    let log = c.find(Locator::Css("table.audit")).await.unwrap().text().await.unwrap();
    for needle in ["mia login", "mia claim", "mia view", "mia view-media", "mia decide", "mia logout", "ada login"] {
        let (who, what) = needle.split_once(' ').unwrap();
        assert!(log.lines().any(|l| l.contains(&format!(" {who} {what} "))), "{needle} in\n{log}");
    }
    assert!(log.contains("\"action\":\"remove\""), "{log}");
    c.close().await.unwrap();
}

/// Saves a screenshot where `FRANKLY_SCREENSHOTS` says (docs/screenshots
/// is made this way), after checking that it is a real picture of the page:
/// a PNG of the window's size that is not one flat colour.
fn check_screenshot(png: &[u8], name: &str) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap().to_rgb8();
    assert!(image.width() >= 800 && image.height() >= 600, "{}x{}", image.width(), image.height());
    let first = *image.get_pixel(0, 0);
    let differing = image.pixels().filter(|p| **p != first).count();
    assert!(differing > image.pixels().len() / 50, "the screenshot is nearly blank: {differing} pixels differ");
    if let Some(dir) = std::env::var_os("FRANKLY_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("wrote {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_shows_strikes_history_and_comments_in_chromium() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let Some((_driver, c)) = browser().await else { return };
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    for conv in ["earlier", "now"] {
        let msgs = conversation(&h.keyring(), conv, "mallory", "bob", 3, now);
        let (_, envelope) = seal(msgs, Reason::Harassment, &h.server_key());
        assert_eq!(h.post_report(envelope).await.0, axum::http::StatusCode::ACCEPTED);
    }
    // Another moderator removed the earlier report: a strike against mallory.
    let mo = common::review::account(&h, "mo", Role::Moderator).await;
    let removal = serde_json::json!({"action": "remove", "facts": "threats in message 3", "ground": "terms",
        "ground_reference": "terms 4.2"});
    let earlier = common::review::claim_and_decide(&h, &mo.key, "harassment", removal).await;
    frankly_server::create_user(h.state.db(), "test", "mia", "a long test password", Role::Moderator).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(frankly_server::serve(h.state.clone(), listener, std::future::pending()));
    c.set_window_size(1280, 1600).await.unwrap();

    sign_in(&c, &base, "mia").await;
    press(&c, 'c').await;
    c.wait().for_element(Locator::Css("ol.messages")).await.unwrap();
    let strikes = c.find(Locator::Css("dd.strike-count")).await.unwrap().text().await.unwrap();
    assert_eq!(strikes, "1 active against mallory");
    let listed = c.find(Locator::Css("ul.strikes")).await.unwrap().text().await.unwrap();
    assert!(
        listed.contains(&format!("Report {earlier}")) && listed.contains("remove") && listed.contains("active until"),
        "{listed}"
    );
    let history = c.find(Locator::Css("ul.sender-history")).await.unwrap().text().await.unwrap();
    assert!(history.contains(&format!("Report {earlier}")) && history.contains("decided: remove"), "{history}");
    // A comment through the form, shown with its author.
    let form = c.form(Locator::Css("form.comment")).await.unwrap();
    form.set_by_name("body", "Same pattern as the earlier report: see message 3.").await.unwrap();
    c.find(Locator::XPath("//button[text()='Add comment']")).await.unwrap().click().await.unwrap();
    // The comment's own item (the page before it lists "None."), on the page the form leads to.
    let comment =
        c.wait().for_element(Locator::Css("ul.comments li[id^='comment-']")).await.unwrap().text().await.unwrap();
    assert!(
        comment.starts_with("mia · ") && comment.ends_with("Same pattern as the earlier report: see message 3."),
        "{comment}"
    );
    // The sections are on screen, and the screenshot shows them.
    for css in ["dd.strike-count", "ul.strikes", "ul.sender-history", "ul.comments"] {
        assert!(c.find(Locator::Css(css)).await.unwrap().is_displayed().await.unwrap(), "{css} hidden");
    }
    c.execute(
        "window.scrollTo(0, document.querySelector('ul.strikes').getBoundingClientRect().top + window.scrollY - 200)",
        vec![],
    )
    .await
    .unwrap();
    check_screenshot(&c.screenshot().await.unwrap(), "review-strikes-history-comments.png");
    c.close().await.unwrap();
}
