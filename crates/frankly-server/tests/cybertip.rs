//! The CyberTipline export of a report referred to an authority: NCMEC's
//! `<report>` and `<fileDetails>` documents, validated against
//! `frankly-cybertip`'s schema with libxml2's `xmllint`, with the file's
//! hashes, the franking verdict as the basis, who may export and what.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use common::franked::{conversation, seal, with_attachments};
use common::review::{account, api, api_json};
use common::{Engine, Harness};
use frankly_api::moderation::{Claimed, CybertipExport};
use frankly_report::Reason;
use frankly_review::Role;
use serde_json::{Value, json};

fn xmllint_validates(xml: &str) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../frankly-cybertip/cybertipline.xsd");
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    std::fs::write(&doc, xml).unwrap();
    match Command::new("xmllint").arg("--noout").arg("--schema").arg(&schema).arg(&doc).output() {
        Ok(out) => assert!(out.status.success(), "{}\n{xml}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => common::missing(&format!("xmllint (Debian libxml2-utils): {e}")),
    }
}

fn config() -> frankly_server::CybertipConfig {
    frankly_server::CybertipConfig {
        platform: "Example Chat".into(),
        chat_client: "Example Chat for Android 5.2".into(),
        first_name: "Trust".into(),
        last_name: "Safety".into(),
        email: "trust-safety@example.org".into(),
        company_template: Some("Example Org operates Example Chat; serve legal process at legal@example.org.".into()),
        legal_url: Some("https://example.org/legal".into()),
        endpoint: None,
        credentials_file: None,
        timeout_seconds: 10,
    }
}

async fn file_child_safety(h: &Harness, conv: &str, photo: &[u8]) {
    let now = u64::try_from(frankly_server::now_ms()).unwrap() - 60_000;
    let mut msgs = conversation(&h.keyring(), conv, "mallory", "bob", 3, now);
    with_attachments(&h.keyring(), &mut msgs, &[("image/jpeg", photo)], now + 10);
    let (_, envelope) = seal(msgs, Reason::ChildSafety, &h.server_key());
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referred_report_exports_as_a_valid_cybertipline_report_with_its_files() {
    let h = Harness::start(Engine::Sqlite, |c| c.cybertipline = Some(config())).await.unwrap();
    let cora = account(&h, "cora", Role::ChildSafety).await;
    let mo = account(&h, "mo", Role::Moderator).await;
    let photo = common::photo();
    file_child_safety(&h, "c1", &photo).await;
    file_child_safety(&h, "c2", &photo).await;

    let held: Claimed = api_json(&h, &cora.key, "POST", "/api/v1/queues/child-safety/claim", None).await;
    let id = held.report.unwrap();
    let path = format!("/api/v1/reports/{id}/cybertipline");
    let detail: Value = api_json(&h, &cora.key, "GET", &format!("/api/v1/reports/{id}"), None).await;
    let media = detail["messages"][2]["attachments"][0]["url"].as_str().unwrap().to_string();
    // Not referred yet.
    let (status, body) = api(&h, &cora.key, "GET", &path, None).await;
    assert_eq!(
        (status, serde_json::from_slice::<Value>(&body).unwrap()["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_referred"))
    );
    // A specialist looks at the file, then refers.
    assert_eq!(api(&h, &cora.key, "GET", &media, None).await.0, StatusCode::OK);
    let refer = json!({"action": "report-authority", "facts": "apparent CSAM in message 3 <img> & text", "ground": "legal",
        "ground_reference": "18 U.S.C. 2258A"});
    let _: Value = api_json(&h, &cora.key, "POST", &format!("/api/v1/reports/{id}/decision"), Some(refer)).await;

    let export: CybertipExport = api_json(&h, &cora.key, "GET", &path, None).await;
    xmllint_validates(&export.report_xml);
    let xml = &export.report_xml;
    for part in [
        "<incidentType>Child Pornography (possession, manufacture, and distribution)</incidentType>",
        "<platform>Example Chat</platform>",
        "<chatClient>Example Chat for Android 5.2</chatClient>",
        "3 of 3 messages of this private conversation verified by message franking",
        "<espIdentifier>mallory</espIdentifier>",
        "<espIdentifier>bob</espIdentifier>",
        "<email>trust-safety@example.org</email>",
        "apparent CSAM in message 3 &lt;img&gt; &amp; text",
        "referred by cora",
    ] {
        assert!(xml.contains(part), "{part} missing from {xml}");
    }
    assert!(xml.find("<personOrUserReported>").unwrap() < xml.find("<espIdentifier>mallory").unwrap());
    assert_eq!(export.files.len(), 1);
    let f = &export.files[0];
    assert_eq!(f.md5, hex::encode(<md5::Md5 as sha2::Digest>::digest(&photo)));
    assert_eq!(f.sha1, hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&photo)));
    assert_eq!(f.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&photo)));
    assert_eq!(f.pdq.as_ref().map(String::len), Some(64));
    assert!(f.viewed_by_esp, "cora fetched it");

    let details_path = format!("{}?report_id=7855770&file_id=15a2034b50f2a558f6595a2b5e02ccce", f.file_details_url);
    let (status, body) = api(&h, &cora.key, "GET", &details_path, None).await;
    assert_eq!(status, StatusCode::OK);
    let details = String::from_utf8(body).unwrap();
    xmllint_validates(&details);
    assert!(
        details.contains("<reportId>7855770</reportId>") && details.contains("<fileViewedByEsp>true</fileViewedByEsp>")
    );
    assert!(details.contains(&format!("<originalFileHash hashType=\"MD5\">{}</originalFileHash>", f.md5)));
    assert!(details.contains(&format!("<value>{}</value>", f.pdq.as_ref().unwrap())));
    let (status, _) = api(&h, &cora.key, "GET", &f.file_details_url, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "NCMEC's ids are required");

    // A moderator may not export (nor see the queue); the second report, unviewed and dismissed, is not referred.
    assert_eq!(api(&h, &mo.key, "GET", &path, None).await.0, StatusCode::FORBIDDEN);
    let held: Claimed = api_json(&h, &cora.key, "POST", "/api/v1/queues/child-safety/claim", None).await;
    let other = held.report.unwrap();
    let _: Value = api_json(
        &h,
        &cora.key,
        "POST",
        &format!("/api/v1/reports/{other}/decision"),
        Some(json!({"action": "dismiss", "ground": "terms"})),
    )
    .await;
    let (status, _) = api(&h, &cora.key, "GET", &format!("/api/v1/reports/{other}/cybertipline"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Audited.
    let audit = frankly_server::audit::recent(h.state.db(), 100).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "export-cybertip" && e.subject == format!("report:{id}") && e.actor == "cora")
    );
    assert!(audit.iter().any(|e| e.action == "export-cybertip-file" && e.detail.contains("ncmec:7855770/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_configuration_the_export_says_what_is_missing() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let cora = account(&h, "cora", Role::ChildSafety).await;
    let (status, body) = api(&h, &cora.key, "GET", "/api/v1/reports/1/cybertipline", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&body).contains("[cybertipline]"));
}

/// What the fake NCMEC service received.
#[derive(Default)]
struct Ncmec {
    calls: std::sync::Mutex<Vec<String>>,
    uploads: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Answer a wrong MD5 to uploads (a damaged transfer).
    wrong_md5: std::sync::atomic::AtomicBool,
}

/// NCMEC's reporting web service as its documentation describes it, on
/// 127.0.0.1: Basic auth, XML validated on /submit and /fileinfo.
async fn fake_ncmec() -> (String, std::sync::Arc<Ncmec>) {
    use axum::extract::{Multipart, State};
    use axum::http::HeaderMap;
    use axum::routing::post;
    let seen = std::sync::Arc::new(Ncmec::default());
    fn authorized(h: &HeaderMap) -> bool {
        use base64::Engine;
        let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("esp-user:s3cret pass"));
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }
    fn answer(body: String) -> ([(&'static str, &'static str); 1], String) {
        ([("content-type", "application/xml;charset=ISO-8859-1")], body)
    }
    let ok = |extra: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><reportResponse><responseCode>0</responseCode><responseDescription>Success</responseDescription><reportId>4242</reportId>{extra}</reportResponse>"
        )
    };
    let xml_call = move |name: &'static str| {
        move |State(s): State<std::sync::Arc<Ncmec>>, h: HeaderMap, body: String| async move {
            assert!(authorized(&h), "{name} without NCMEC's credentials");
            xmllint_validates(&body);
            s.calls.lock().unwrap().push(name.to_string());
            answer(ok(""))
        }
    };
    let form_call = move |name: &'static str| {
        move |State(s): State<std::sync::Arc<Ncmec>>, h: HeaderMap, mut form: Multipart| async move {
            assert!(authorized(&h));
            let mut id = String::new();
            let mut file = None;
            while let Some(field) = form.next_field().await.unwrap() {
                match field.name() {
                    Some("id") => id = field.text().await.unwrap(),
                    Some("file") => file = Some(field.bytes().await.unwrap().to_vec()),
                    other => panic!("unexpected field {other:?}"),
                }
            }
            assert_eq!(id, "4242");
            s.calls.lock().unwrap().push(name.to_string());
            match file {
                Some(bytes) => {
                    let md5 = if s.wrong_md5.load(std::sync::atomic::Ordering::SeqCst) {
                        "0".repeat(32)
                    } else {
                        hex::encode(<md5::Md5 as sha2::Digest>::digest(&bytes))
                    };
                    s.uploads.lock().unwrap().push(bytes);
                    answer(ok(&format!("<fileId>f{}</fileId><hash>{md5}</hash>", s.uploads.lock().unwrap().len())))
                }
                None if name == "finish" => answer(
                    "<reportDoneResponse><responseCode>0</responseCode><reportId>4242</reportId><files><fileId>f1</fileId></files></reportDoneResponse>".into(),
                ),
                None => answer(ok("")),
            }
        }
    };
    let app = axum::Router::new()
        .route("/ispws/submit", post(xml_call("submit")))
        .route("/ispws/fileinfo", post(xml_call("fileinfo")))
        .route("/ispws/upload", post(form_call("upload")))
        .route("/ispws/finish", post(form_call("finish")))
        .route("/ispws/retract", post(form_call("retract")))
        .with_state(std::sync::Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ispws", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referred_report_is_submitted_to_the_cybertipline_once_and_a_damaged_upload_is_retracted() {
    let (url, ncmec) = fake_ncmec().await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("ncmec.credentials");
    std::fs::write(&creds, "esp-user:s3cret pass\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let creds_for_config = creds.clone();
    let h = Harness::start(Engine::Sqlite, |c| {
        c.cybertipline = Some(frankly_server::CybertipConfig {
            endpoint: Some(url),
            credentials_file: Some(creds_for_config),
            ..config()
        })
    })
    .await
    .unwrap();
    let cora = account(&h, "cora", Role::ChildSafety).await;
    let photo = common::photo();
    file_child_safety(&h, "c1", &photo).await;
    file_child_safety(&h, "c2", &photo).await;
    let refer = json!({"action": "report-authority", "facts": "apparent CSAM in message 3", "ground": "legal",
        "ground_reference": "18 U.S.C. 2258A"});
    let mut referred = Vec::new();
    for _ in 0..2 {
        let held: Claimed = api_json(&h, &cora.key, "POST", "/api/v1/queues/child-safety/claim", None).await;
        let id = held.report.unwrap();
        let _: Value =
            api_json(&h, &cora.key, "POST", &format!("/api/v1/reports/{id}/decision"), Some(refer.clone())).await;
        referred.push(id);
    }

    let submit = |id: i64| format!("/api/v1/reports/{id}/cybertipline/submit");
    let done: frankly_api::moderation::CybertipSubmitted =
        api_json(&h, &cora.key, "POST", &submit(referred[0]), None).await;
    assert_eq!(done.ncmec_report_id, 4242);
    assert_eq!(done.files.len(), 1);
    assert_eq!(*ncmec.calls.lock().unwrap(), ["submit", "upload", "fileinfo", "finish"]);
    assert_eq!(ncmec.uploads.lock().unwrap()[0], photo, "the decrypted bytes as sent");
    // Once only.
    let (status, body) = api(&h, &cora.key, "POST", &submit(referred[0]), None).await;
    assert_eq!(
        (status, serde_json::from_slice::<Value>(&body).unwrap()["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_submitted"))
    );

    // A damaged upload: refused, the opened report retracted, recorded, and it may be submitted again.
    ncmec.calls.lock().unwrap().clear();
    ncmec.wrong_md5.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = api(&h, &cora.key, "POST", &submit(referred[1]), None).await;
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, err["error"].as_str()), (StatusCode::BAD_GATEWAY, Some("ncmec_failed")));
    assert!(err["message"].as_str().unwrap().contains("the opened NCMEC report was retracted"), "{err}");
    assert_eq!(*ncmec.calls.lock().unwrap(), ["submit", "upload", "retract"]);
    ncmec.wrong_md5.store(false, std::sync::atomic::Ordering::SeqCst);
    let again: frankly_api::moderation::CybertipSubmitted =
        api_json(&h, &cora.key, "POST", &submit(referred[1]), None).await;
    assert_eq!(again.files.len(), 1);
    let audit = frankly_server::audit::recent(h.state.db(), 200).await.unwrap();
    let actions: Vec<&str> =
        audit.iter().filter(|e| e.action.starts_with("submit-cybertip")).map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["submit-cybertip", "submit-cybertip-failed", "submit-cybertip"]);
    assert!(audit.iter().all(|e| !e.detail.contains("s3cret")), "the password is never logged");

    // Credentials others can read are refused.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    file_child_safety(&h, "c3", &photo).await;
    let held: Claimed = api_json(&h, &cora.key, "POST", "/api/v1/queues/child-safety/claim", None).await;
    let id = held.report.unwrap();
    let _: Value = api_json(&h, &cora.key, "POST", &format!("/api/v1/reports/{id}/decision"), Some(refer)).await;
    let (status, _) = api(&h, &cora.key, "POST", &submit(id), None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_is_off_unless_configured() {
    let h = Harness::start(Engine::Sqlite, |c| c.cybertipline = Some(config())).await.unwrap();
    let cora = account(&h, "cora", Role::ChildSafety).await;
    let (status, body) = api(&h, &cora.key, "POST", "/api/v1/reports/1/cybertipline/submit", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"], "cybertipline_submission_off");
}
