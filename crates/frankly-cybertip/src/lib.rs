//! NCMEC CyberTipline reports from frankly's verified reports.
//!
//! US electronic service providers report apparent child sexual abuse
//! material to NCMEC's CyberTipline (18 U.S.C. § 2258A) through its
//! reporting web service: a `<report>` document opens a report (`/submit`),
//! each file is uploaded (`/upload`) and described by a `<fileDetails>`
//! document (`/fileinfo`), and `/finish` closes it. This crate writes those
//! two documents from what the moderation server verified, and reads the
//! service's `<reportResponse>`; it does no I/O.
//!
//! The element names, their order (the service's XSD is a sequence
//! almost everywhere, and it refuses an element out of order), which are
//! required and the length limits follow NCMEC's "CyberTipline Reporting
//! API Technical Documentation". `cybertipline.xsd` beside this crate is a
//! schema written out from that documentation for what this crate emits:
//! stricter than NCMEC's own (a reporting person's email is required, dates
//! carry a zone, at most one reported user), never looser, so a document
//! valid under it is valid under NCMEC's. Rules an XSD cannot state (dates
//! in the past, lengths of composed text) are checked here.
//!
//! The XML is written with `quick-xml`, which escapes text and attributes;
//! only the document's shape is this crate's.

use std::io::Cursor;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// NCMEC's incident types (`incidentSummary/incidentType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentType {
    /// Apparent child sexual abuse material ("Child Pornography (possession,
    /// manufacture, and distribution)" in the statute's and NCMEC's words).
    ChildPornography,
    /// Child sex trafficking.
    ChildSexTrafficking,
    /// Child sex tourism.
    ChildSexTourism,
    /// Child sexual molestation.
    ChildSexualMolestation,
    /// Misleading domain name.
    MisleadingDomainName,
    /// Misleading words or digital images on the internet.
    MisleadingWordsOrImages,
    /// Online enticement of children for sexual acts.
    OnlineEnticement,
    /// Unsolicited obscene material sent to a child.
    UnsolicitedObsceneMaterial,
}

impl IncidentType {
    /// The value NCMEC's schema enumerates.
    pub fn value(self) -> &'static str {
        match self {
            IncidentType::ChildPornography => "Child Pornography (possession, manufacture, and distribution)",
            IncidentType::ChildSexTrafficking => "Child Sex Trafficking",
            IncidentType::ChildSexTourism => "Child Sex Tourism",
            IncidentType::ChildSexualMolestation => "Child Sexual Molestation",
            IncidentType::MisleadingDomainName => "Misleading Domain Name",
            IncidentType::MisleadingWordsOrImages => "Misleading Words or Digital Images on the Internet",
            IncidentType::OnlineEnticement => "Online Enticement of Children for Sexual Acts",
            IncidentType::UnsolicitedObsceneMaterial => "Unsolicited Obscene Material Sent to a Child",
        }
    }
}

/// The provider filing the report (`reporter`), from the server's
/// configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reporter {
    /// The reporting person's first name.
    pub first_name: String,
    /// Their last name.
    pub last_name: String,
    /// Their email (NCMEC requires one).
    pub email: String,
    /// The company's boilerplate: who it is, how to serve legal process,
    /// what it retains.
    pub company_template: Option<String>,
    /// The provider's legal page.
    pub legal_url: Option<String>,
}

/// A user of the service named in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The service's user id (`espIdentifier`).
    pub user_id: String,
    /// The devices the user sent or received from (`deviceId`, type
    /// "frankly device id").
    pub devices: Vec<String>,
}

/// One incident: the reported conversation as the server verified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// What.
    pub incident_type: IncidentType,
    /// The application's name (`platform`, `espService`).
    pub platform: String,
    /// The chat client, e.g. the app and its version (`chatClient`).
    pub chat_client: String,
    /// When the reported message was sent (Unix ms): the platform's own
    /// timestamp, bound into its tag.
    pub incident_ms: i64,
    /// What that time is.
    pub incident_time_description: String,
    /// How the conversation was verified (`chatImIncident/additionalInfo`).
    pub verification: String,
    /// The sender of the reported message (`personOrUserReported`).
    pub reported: Account,
    /// The reporter, who received it (`intendedRecipient`).
    pub recipient: Account,
    /// Everything else (`report/additionalInfo`): the provider's report id,
    /// the decision's facts.
    pub additional_info: String,
}

/// Why a file is in the report (`fileRelevance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relevance {
    /// The apparent CSAM itself.
    Reported,
    /// Supporting material, e.g. the conversation's transcript.
    SupplementalReported,
}

/// One uploaded file's details (`fileDetails`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// NCMEC's report id (from `/submit`).
    pub report_id: i64,
    /// NCMEC's file id (from `/upload`).
    pub file_id: String,
    /// The file's name as the service knows it.
    pub original_file_name: Option<String>,
    /// When the sender sent it (Unix ms).
    pub uploaded_ms: Option<i64>,
    /// Whether a person at the provider viewed the whole file.
    pub viewed_by_esp: bool,
    /// Why it is in the report.
    pub relevance: Relevance,
    /// Hashes of the bytes as the user sent them: (type, lowercase hex),
    /// e.g. `("MD5", ...)`, `("SHA1", ...)`.
    pub hashes: Vec<(String, String)>,
    /// Perceptual hashes (`details type="HASH"`): (name, value), e.g.
    /// `("PDQ", ...)`. NCMEC defines `originalFileHash` as a hash of the
    /// file's bytes, which a perceptual hash is not, so they go here.
    pub perceptual: Vec<(String, String)>,
    /// Free text (`additionalInfo`, each its own element).
    pub additional_info: Vec<String>,
}

/// NCMEC's answer to a call (`reportResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// 0 is success.
    pub code: i64,
    /// The description.
    pub description: String,
    /// The report's id.
    pub report_id: Option<i64>,
    /// The uploaded file's id.
    pub file_id: Option<String>,
    /// NCMEC's MD5 of an uploaded file.
    pub hash: Option<String>,
}

/// Why a document could not be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CybertipError {
    /// A field longer than NCMEC accepts.
    #[error("{field} is {chars} characters (NCMEC accepts at most {max})")]
    TooLong {
        /// The element.
        field: &'static str,
        /// Its length.
        chars: usize,
        /// NCMEC's limit.
        max: usize,
    },
    /// A required field that is empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// An email NCMEC would refuse.
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    /// A time NCMEC refuses: every time must be in the past.
    #[error("{field} is in the future ({ms} ms, now {now} ms)")]
    Future {
        /// The element.
        field: &'static str,
        /// The time given.
        ms: i64,
        /// Now.
        now: i64,
    },
    /// A hash that is not hexadecimal.
    #[error("{0} hash is not hexadecimal")]
    BadHash(String),
    /// A `reportResponse` that cannot be read.
    #[error("NCMEC's response cannot be read: {0}")]
    BadResponse(String),
}

fn check(field: &'static str, value: &str, max: usize) -> Result<(), CybertipError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(CybertipError::TooLong { field, chars, max });
    }
    Ok(())
}

fn required(field: &'static str, value: &str, max: usize) -> Result<(), CybertipError> {
    if value.trim().is_empty() {
        return Err(CybertipError::Missing(field));
    }
    check(field, value, max)
}

fn check_email(email: &str) -> Result<(), CybertipError> {
    required("reportingPerson/email", email, 255)?;
    let bad = || CybertipError::BadEmail(email.chars().take(64).collect());
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || !domain.contains('.') || email.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok(())
}

fn check_past(field: &'static str, ms: i64, now: i64) -> Result<(), CybertipError> {
    if ms > now {
        return Err(CybertipError::Future { field, ms, now });
    }
    Ok(())
}

/// Unix milliseconds as the `xs:dateTime` NCMEC wants: UTC with a zone,
/// `2026-03-14T09:21:07.123Z`.
pub fn date_time(ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

type W = Writer<Cursor<Vec<u8>>>;

fn text(w: &mut W, name: &str, value: &str) -> std::io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(value))?;
    Ok(())
}

fn document(root: &str, body: impl FnOnce(&mut W) -> std::io::Result<()>) -> String {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    // Writing into memory cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w
        .create_element(root)
        .with_attribute(("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"))
        .with_attribute(("xsi:noNamespaceSchemaLocation", "https://report.cybertip.org/ispws/xsd"))
        .write_inner_content(body);
    String::from_utf8(w.into_inner().into_inner()).unwrap_or_default()
}

fn account(w: &mut W, account: &Account, platform: &str) -> std::io::Result<()> {
    text(w, "espIdentifier", &account.user_id)?;
    text(w, "espService", platform)?;
    for device in &account.devices {
        w.create_element("deviceId").write_inner_content(|w| {
            text(w, "idType", "frankly device id")?;
            text(w, "idValue", device)
        })?;
    }
    Ok(())
}

fn check_account(account: &Account) -> Result<(), CybertipError> {
    required("espIdentifier", &account.user_id, 255)?;
    for d in &account.devices {
        required("deviceId/idValue", d, 2083)?;
    }
    Ok(())
}

/// The `<report>` document for `/submit`, checked against NCMEC's rules
/// at `now` (Unix ms).
pub fn report_xml(incident: &Incident, reporter: &Reporter, now: i64) -> Result<String, CybertipError> {
    required("platform", &incident.platform, 256)?;
    check("espService", &incident.platform, 100)?;
    check("chatClient", &incident.chat_client, 255)?;
    check("incidentDateTimeDescription", &incident.incident_time_description, 3000)?;
    check_past("incidentDateTime", incident.incident_ms, now)?;
    check_account(&incident.reported)?;
    check_account(&incident.recipient)?;
    required("reportingPerson/firstName", &reporter.first_name, 100)?;
    required("reportingPerson/lastName", &reporter.last_name, 100)?;
    check_email(&reporter.email)?;
    if let Some(url) = &reporter.legal_url {
        check("legalURL", url, 2083)?;
    }
    Ok(document("report", |w| {
        w.create_element("incidentSummary").write_inner_content(|w| {
            text(w, "incidentType", incident.incident_type.value())?;
            text(w, "platform", &incident.platform)?;
            text(w, "incidentDateTime", &date_time(incident.incident_ms))?;
            if !incident.incident_time_description.is_empty() {
                text(w, "incidentDateTimeDescription", &incident.incident_time_description)?;
            }
            Ok(())
        })?;
        w.create_element("internetDetails").write_inner_content(|w| {
            w.create_element("chatImIncident").write_inner_content(|w| {
                if !incident.chat_client.is_empty() {
                    text(w, "chatClient", &incident.chat_client)?;
                }
                if !incident.verification.is_empty() {
                    text(w, "additionalInfo", &incident.verification)?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
        w.create_element("reporter").write_inner_content(|w| {
            w.create_element("reportingPerson").write_inner_content(|w| {
                text(w, "firstName", &reporter.first_name)?;
                text(w, "lastName", &reporter.last_name)?;
                text(w, "email", &reporter.email)
            })?;
            if let Some(t) = &reporter.company_template {
                text(w, "companyTemplate", t)?;
            }
            if let Some(url) = &reporter.legal_url {
                text(w, "legalURL", url)?;
            }
            Ok(())
        })?;
        w.create_element("personOrUserReported")
            .write_inner_content(|w| account(w, &incident.reported, &incident.platform))?;
        w.create_element("intendedRecipient")
            .write_inner_content(|w| account(w, &incident.recipient, &incident.platform))?;
        if !incident.additional_info.is_empty() {
            text(w, "additionalInfo", &incident.additional_info)?;
        }
        Ok(())
    }))
}

/// The `<fileDetails>` document for `/fileinfo`, checked at `now`.
pub fn file_details_xml(file: &FileInfo, now: i64) -> Result<String, CybertipError> {
    required("fileId", &file.file_id, 255)?;
    if let Some(name) = &file.original_file_name {
        check("originalFileName", name, 2056)?;
    }
    if let Some(ms) = file.uploaded_ms {
        check_past("uploadedToEspTimestamp", ms, now)?;
    }
    for (kind, value) in file.hashes.iter().chain(&file.perceptual) {
        required("hashType", kind, 64)?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CybertipError::BadHash(kind.clone()));
        }
    }
    Ok(document("fileDetails", |w| {
        text(w, "reportId", &file.report_id.to_string())?;
        text(w, "fileId", &file.file_id)?;
        if let Some(name) = &file.original_file_name {
            text(w, "originalFileName", name)?;
        }
        if let Some(ms) = file.uploaded_ms {
            text(w, "uploadedToEspTimestamp", &date_time(ms))?;
        }
        text(w, "fileViewedByEsp", if file.viewed_by_esp { "true" } else { "false" })?;
        text(w, "exifViewedByEsp", "false")?;
        text(w, "publiclyAvailable", "false")?;
        let relevance = match file.relevance {
            Relevance::Reported => "Reported",
            Relevance::SupplementalReported => "Supplemental Reported",
        };
        text(w, "fileRelevance", relevance)?;
        for (kind, value) in &file.hashes {
            w.create_element("originalFileHash")
                .with_attribute(("hashType", kind.as_str()))
                .write_text_content(BytesText::new(value))?;
        }
        if !file.perceptual.is_empty() {
            w.create_element("details").with_attribute(("type", "HASH")).write_inner_content(|w| {
                for (name, value) in &file.perceptual {
                    w.create_element("nameValuePair").write_inner_content(|w| {
                        text(w, "name", name)?;
                        text(w, "value", value)
                    })?;
                }
                Ok(())
            })?;
        }
        for info in &file.additional_info {
            text(w, "additionalInfo", info)?;
        }
        Ok(())
    }))
}

/// Most bytes of a `reportResponse` read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Reads the service's `<reportResponse>` (or `<reportDoneResponse>`).
pub fn parse_response(xml: &[u8]) -> Result<Response, CybertipError> {
    if xml.len() > MAX_RESPONSE_BYTES {
        return Err(CybertipError::BadResponse(format!("{} bytes (limit {MAX_RESPONSE_BYTES})", xml.len())));
    }
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut out = Response { code: -1, description: String::new(), report_id: None, file_id: None, hash: None };
    let mut current: Option<String> = None;
    let mut seen_code = false;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| CybertipError::BadResponse(e.to_string()))?;
        match event {
            Event::Start(e) => current = Some(AsRef::<str>::as_ref(&e.name()).to_string()),
            Event::End(_) => current = None,
            Event::Text(t) => {
                let value = t.xml10_content().into_owned();
                let bad = |what: &str| CybertipError::BadResponse(format!("{what} is {value:?}"));
                match current.as_deref() {
                    Some("responseCode") => {
                        out.code = value.trim().parse().map_err(|_| bad("responseCode"))?;
                        seen_code = true;
                    }
                    Some("responseDescription") => out.description = value,
                    Some("reportId") => out.report_id = Some(value.trim().parse().map_err(|_| bad("reportId"))?),
                    Some("fileId") if out.file_id.is_none() => out.file_id = Some(value.trim().to_string()),
                    Some("hash") => out.hash = Some(value.trim().to_string()),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_code {
        return Err(CybertipError::BadResponse("no responseCode".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_with_a_zone() {
        assert_eq!(date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date_time(1_773_480_067_123), "2026-03-14T09:21:07.123Z");
        assert_eq!(date_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(date_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn responses_are_read() {
        let ok = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><reportResponse><responseCode>0</responseCode><responseDescription>Success</responseDescription><reportId>7855770</reportId><fileId>15a2034b50f2a558f6595a2b5e02ccce</fileId><hash>af3d0406f63a0f99a8684d568a59542f</hash></reportResponse>"#;
        let r = parse_response(ok).unwrap();
        assert_eq!(
            (r.code, r.report_id, r.file_id.as_deref()),
            (0, Some(7_855_770), Some("15a2034b50f2a558f6595a2b5e02ccce"))
        );
        let done = b"<reportDoneResponse><responseCode>0</responseCode><reportId>5</reportId><files><fileId>a</fileId><fileId>b</fileId></files></reportDoneResponse>";
        assert_eq!(parse_response(done).unwrap().report_id, Some(5));
        assert!(parse_response(b"<reportResponse><responseCode>x</responseCode></reportResponse>").is_err());
        assert!(parse_response(b"<html>nope</html>").unwrap_err().to_string().contains("no responseCode"));
        assert!(parse_response(&vec![b' '; MAX_RESPONSE_BYTES + 1]).is_err());
    }
}
