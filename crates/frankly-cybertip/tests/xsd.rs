//! The documents validate against `cybertipline.xsd` (with libxml2's
//! `xmllint`), the validator refuses what NCMEC refuses (an element out of
//! order, a time without a zone, a report without a reporter's email), and
//! the crate refuses what no schema can state.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::path::Path;
use std::process::Command;

use frankly_cybertip::{
    Account, CybertipError, FileInfo, Incident, IncidentType, Relevance, Reporter, file_details_xml, report_xml,
};

const NOW: i64 = 1_800_000_000_000;

fn incident() -> Incident {
    Incident {
        incident_type: IncidentType::ChildPornography,
        platform: "Example Chat".into(),
        chat_client: "frankly demo client 0.1".into(),
        incident_ms: NOW - 3_600_000,
        incident_time_description: "The platform's timestamp of the reported message, bound into its tag".into(),
        verification: "3 of 3 messages verified by message franking <the platform's tags> & commitments".into(),
        reported: Account { user_id: "mallory".into(), devices: vec!["phone".into()] },
        recipient: Account { user_id: "bob".into(), devices: vec!["laptop".into()] },
        additional_info: "frankly report 00ff; decision 7: \"apparent CSAM in message 2\"".into(),
    }
}

fn reporter() -> Reporter {
    Reporter {
        first_name: "Trust".into(),
        last_name: "Safety".into(),
        email: "trust-safety@example.org".into(),
        company_template: Some("Example Org operates Example Chat.".into()),
        legal_url: Some("https://example.org/legal".into()),
    }
}

fn file() -> FileInfo {
    FileInfo {
        report_id: 7_855_770,
        file_id: "15a2034b50f2a558f6595a2b5e02ccce".into(),
        original_file_name: Some("message-2-attachment-0.jpg".into()),
        uploaded_ms: Some(NOW - 3_600_000),
        viewed_by_esp: true,
        relevance: Relevance::Reported,
        hashes: vec![
            ("MD5".into(), "d41d8cd98f00b204e9800998ecf8427e".into()),
            ("SHA1".into(), "da39a3ee5e6b4b0d3255bfef95601890afd80709".into()),
        ],
        perceptual: vec![("PDQ".into(), "f".repeat(64))],
        additional_info: vec!["verified by message franking".into(), "second note".into()],
    }
}

/// Whether `xml` validates against the crate's schema; `None` without xmllint.
fn validates(xml: &str) -> Option<Result<(), String>> {
    validates_against(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cybertipline.xsd"), xml)
}

fn validates_against(schema: &Path, xml: &str) -> Option<Result<(), String>> {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    std::fs::write(&doc, xml).unwrap();
    let out = match Command::new("xmllint").arg("--noout").arg("--schema").arg(schema).arg(&doc).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var_os("FRANKLY_REQUIRE_SERVICES").is_none_or(|v| v != "1"),
                "xmllint (Debian libxml2-utils) is needed: {e}"
            );
            eprintln!("xmllint not found ({e}): install libxml2-utils; skipped");
            return None;
        }
    };
    Some(if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) })
}

#[test]
fn the_report_and_its_file_details_validate() {
    let report = report_xml(&incident(), &reporter(), NOW).unwrap();
    assert!(report.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(report.contains("&lt;the platform&apos;s tags&gt; &amp; commitments"), "escaped: {report}");
    assert!(report.contains("<incidentDateTime>2027-01-15T07:00:00.000Z</incidentDateTime>"), "{report}");
    let details = file_details_xml(&file(), NOW).unwrap();
    assert!(details.contains("<originalFileHash hashType=\"MD5\">d41d8cd98f00b204e9800998ecf8427e</originalFileHash>"));
    assert!(details.contains("<details type=\"HASH\">"));
    let Some(result) = validates(&report) else { return };
    result.unwrap();
    validates(&details).unwrap().unwrap();
    // NCMEC's own schema (`GET /ispws/xsd` with reporting credentials), when given.
    if let Some(ncmec) = std::env::var_os("FRANKLY_NCMEC_XSD") {
        for doc in [&report, &details] {
            validates_against(Path::new(&ncmec), doc).unwrap().unwrap();
        }
        eprintln!("valid under {}", Path::new(&ncmec).display());
    }
    // Without the optional parts as well.
    let bare = Incident {
        chat_client: String::new(),
        verification: String::new(),
        incident_time_description: String::new(),
        additional_info: String::new(),
        ..incident()
    };
    let bare_reporter = Reporter { company_template: None, legal_url: None, ..reporter() };
    validates(&report_xml(&bare, &bare_reporter, NOW).unwrap()).unwrap().unwrap();
    let transcript = FileInfo {
        original_file_name: None,
        uploaded_ms: None,
        relevance: Relevance::SupplementalReported,
        perceptual: vec![],
        additional_info: vec![],
        ..file()
    };
    validates(&file_details_xml(&transcript, NOW).unwrap()).unwrap().unwrap();
}

#[test]
fn the_schema_refuses_what_ncmec_refuses() {
    let report = report_xml(&incident(), &reporter(), NOW).unwrap();
    if validates(&report).is_none() {
        return;
    }
    // An element out of order (NCMEC's service refuses it too).
    let reporter_block = {
        let start = report.find("  <reporter>").unwrap();
        let end = report.find("</reporter>\n").unwrap() + "</reporter>\n".len();
        report[start..end].to_string()
    };
    let moved = report.replacen(&reporter_block, "", 1).replacen(
        "  <incidentSummary>",
        &format!("{reporter_block}  <incidentSummary>"),
        1,
    );
    assert!(validates(&moved).unwrap().unwrap_err().contains("reporter"), "{moved}");
    // A time without its zone.
    let zoneless = report.replace(".000Z</incidentDateTime>", "</incidentDateTime>");
    assert!(validates(&zoneless).unwrap().is_err());
    // No reporting person's email.
    let no_email = report.replace("      <email>trust-safety@example.org</email>\n", "");
    assert!(validates(&no_email).unwrap().is_err(), "{no_email}");
    // A file hash that is not hex, an unknown relevance.
    let details = file_details_xml(&file(), NOW).unwrap();
    assert!(validates(&details.replace(">d41d8cd98f00b204e9800998ecf8427e<", ">not hex<")).unwrap().is_err());
    assert!(validates(&details.replace(">Reported<", ">Maybe<")).unwrap().is_err());
}

#[test]
fn the_crate_refuses_what_no_schema_states() {
    let future = Incident { incident_ms: NOW + 1, ..incident() };
    assert!(matches!(
        report_xml(&future, &reporter(), NOW),
        Err(CybertipError::Future { field: "incidentDateTime", .. })
    ));
    let long = Incident { platform: "x".repeat(257), ..incident() };
    assert_eq!(
        report_xml(&long, &reporter(), NOW).unwrap_err().to_string(),
        "platform is 257 characters (NCMEC accepts at most 256)"
    );
    let no_at = Reporter { email: "trust-safety.example.org".into(), ..reporter() };
    assert!(matches!(report_xml(&incident(), &no_at, NOW), Err(CybertipError::BadEmail(_))));
    let no_id = Incident { reported: Account { user_id: " ".into(), devices: vec![] }, ..incident() };
    assert_eq!(report_xml(&no_id, &reporter(), NOW).unwrap_err(), CybertipError::Missing("espIdentifier"));
    let bad_hash = FileInfo { hashes: vec![("MD5".into(), "xyz".into())], ..file() };
    assert_eq!(file_details_xml(&bad_hash, NOW).unwrap_err(), CybertipError::BadHash("MD5".into()));
    let later = FileInfo { uploaded_ms: Some(NOW + 5), ..file() };
    assert!(file_details_xml(&later, NOW).is_err());
}
