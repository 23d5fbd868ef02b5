//! The CyberTipline export of a report referred to an authority: NCMEC's
//! `<report>` document built from what the server verified (the franking
//! verdict is the report's basis), and per verified attachment its hashes
//! and the `<fileDetails>` document once NCMEC has assigned its ids. The
//! documents are `frankly_cybertip`'s; this module gathers their content.

use frankly_api::moderation::{CybertipExport, CybertipFile};
use frankly_cybertip::{Account, FileInfo, Incident, IncidentType, Relevance, Reporter};
use frankly_review::{Action, Operation, ReviewError};
use sha2::Digest;

use crate::audit;
use crate::auth::User;
use crate::db::Db;
use crate::queue::{self, ReportView};
use crate::{ServerError, StoredVerdict};

/// Who files CyberTipline reports, and as which service (config
/// `[cybertipline]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CybertipConfig {
    /// The service's name (`platform`, `espService`).
    pub platform: String,
    /// The chat client's name and version (`chatClient`).
    #[serde(default)]
    pub chat_client: String,
    /// The reporting person's first name.
    pub first_name: String,
    /// Their last name.
    pub last_name: String,
    /// Their email.
    pub email: String,
    /// The company's boilerplate (how to serve legal process, retention).
    #[serde(default)]
    pub company_template: Option<String>,
    /// The legal page.
    #[serde(default)]
    pub legal_url: Option<String>,
    /// NCMEC's reporting web service, e.g.
    /// `https://exttest.cybertip.org/ispws` (test) or
    /// `https://report.cybertip.org/ispws`; none (the default): no network
    /// submission, the export only.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A file (mode 0600) holding `username:password` for that service.
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    /// Seconds one call to the service may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    60
}

impl CybertipConfig {
    fn reporter(&self) -> Reporter {
        Reporter {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.clone(),
            company_template: self.company_template.clone(),
            legal_url: self.legal_url.clone(),
        }
    }
}

fn invalid(e: frankly_cybertip::CybertipError) -> ServerError {
    ServerError::refused(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_cybertipline", e.to_string())
}

/// The report `id` as `user` may export it: a role that may refer the
/// report's queue to an authority, and a report decided `report-authority`.
async fn referred(db: &Db, user: &User, id: i64) -> Result<(ReportView, queue::DecisionRow), ServerError> {
    let view = queue::view(db, user, id).await?;
    if !user.role.may(Operation::Decide(view.row.queue, Action::ReportAuthority)) {
        return Err(ReviewError::Forbidden.into());
    }
    let decision = view
        .decisions
        .iter()
        .rev()
        .find(|d| d.action == Action::ReportAuthority)
        .cloned()
        .ok_or(ReviewError::NotReferred)?;
    if view.row.purged_ms.is_some() {
        return Err(ReviewError::Purged.into());
    }
    Ok((view, decision))
}

/// Whether a moderator fetched attachment `m/a` of report `id` (the audit
/// log's `view-media` entries): NCMEC's `fileViewedByEsp`.
async fn viewed(db: &Db, id: i64, m: usize, a: usize) -> Result<bool, ServerError> {
    let at = format!("{m}/{a}");
    Ok(sqlx::query(
        "SELECT 1 AS x FROM audit WHERE action = 'view-media' AND subject = $1 AND (detail = $2 OR detail LIKE $3) LIMIT 1",
    )
    .bind(format!("report:{id}"))
    .bind(&at)
    .bind(format!("{at} %"))
    .fetch_optional(db.reader())
    .await?
    .is_some())
}

/// The PDQ hash (hex) of an image's first frame, decoded within the
/// matching limits; `None` for what does not decode as an image.
fn pdq_hex(bytes: &[u8], max_decode_pixels: u64) -> Option<String> {
    use frankly_hash::{DecodeLimits, DecodeOptions, PdqHasher, decode_frames};
    let options = DecodeOptions {
        limits: DecodeLimits {
            max_pixels: max_decode_pixels,
            max_alloc: max_decode_pixels.saturating_mul(8),
            max_file_bytes: crate::matching::MAX_MATCH_ATTACHMENT_BYTES as u64,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    let mut pdq = PdqHasher::new();
    let mut out = None;
    let _ = decode_frames(bytes, &options, |_, rgb| {
        if out.is_none() {
            out = frankly_bank::SignalType::Pdq
                .hash_image(rgb, &mut pdq)
                .map(|(words, _)| frankly_bank::SignalType::Pdq.format_hash(&words));
        }
    });
    out
}

/// The export of report `id` at `now`: the `<report>` document and each
/// verified attachment's hashes (audited as `export-cybertip`).
pub(crate) async fn export(
    db: &Db,
    user: &User,
    id: i64,
    config: &CybertipConfig,
    max_decode_pixels: u64,
    now: i64,
) -> Result<CybertipExport, ServerError> {
    let (view, decision) = referred(db, user, id).await?;
    let report = &view.stored.report;
    let reported = report
        .messages
        .get(usize::from(report.reported))
        .ok_or_else(|| ServerError::Internal(format!("report {id}: no reported message")))?;
    let devices = |user_id: &str| -> Vec<String> {
        let mut d: Vec<String> = report
            .messages
            .iter()
            .filter(|m| m.delivery.sender.user_id == user_id)
            .map(|m| m.delivery.sender.device_id.clone())
            .collect();
        d.sort();
        d.dedup();
        d
    };
    let sender = reported.delivery.sender.user_id.clone();
    let verification = format!(
        "{} of {} messages of this private conversation verified by message franking: for each, the sender's \
         commitment opens to exactly the text and attachments reported, and the service's own tag binds it to its \
         sender, recipient, conversation, sequence number and time; the reported message is verified. Order: {}. \
         The content reached the service through the recipient's in-app report of an end-to-end encrypted \
         conversation; the service cannot read the conversation otherwise.",
        view.row.verified,
        view.row.messages,
        view.stored.order_summary()
    );
    let incident = Incident {
        incident_type: IncidentType::ChildPornography,
        platform: config.platform.clone(),
        chat_client: config.chat_client.clone(),
        incident_ms: i64::try_from(reported.delivery.timestamp_ms).unwrap_or(i64::MAX),
        incident_time_description: "The service's timestamp of the reported message, bound into its tag".into(),
        verification,
        reported: Account { user_id: sender.clone(), devices: devices(&sender) },
        recipient: Account {
            user_id: report.reporter.user_id.clone(),
            devices: vec![report.reporter.device_id.clone()],
        },
        additional_info: format!(
            "frankly report {} (server id {id}), received {}; referred by {} at {} on the ground {} {}: {}",
            view.row.report_id,
            crate::web::utc(view.row.received_ms),
            decision.moderator,
            crate::web::utc(decision.decided_ms),
            decision.ground,
            decision.ground_reference,
            decision.facts
        ),
    };
    let report_xml = frankly_cybertip::report_xml(&incident, &config.reporter(), now).map_err(invalid)?;
    let mut files = Vec::new();
    for meta in &view.attachments {
        if view.stored.verdicts.get(meta.message) != Some(&StoredVerdict::Verified) {
            continue;
        }
        let (_, bytes) =
            crate::attachments::fetch_by_id(db, meta.id).await?.ok_or(ReviewError::NotFound("attachment"))?;
        let bytes = bytes.ok_or(ReviewError::Purged)?;
        files.push(CybertipFile {
            attachment: meta.id,
            message: meta.message,
            media_url: format!("/api/v1/media/{}", meta.id),
            size: meta.size,
            md5: hex::encode(md5::Md5::digest(&bytes)),
            sha1: hex::encode(sha1::Sha1::digest(&bytes)),
            sha256: meta.sha256.clone(),
            pdq: pdq_hex(&bytes, max_decode_pixels),
            viewed_by_esp: viewed(db, id, meta.message, meta.attachment).await?,
            file_details_url: format!("/api/v1/reports/{id}/cybertipline/files/{}", meta.id),
        });
    }
    let detail = format!("decision:{} files:{}", decision.id, files.len());
    audit::record(db, &user.username, "export-cybertip", &format!("report:{id}"), &detail).await?;
    Ok(CybertipExport { report_xml, files })
}

/// The `<fileDetails>` document of attachment `attachment` of report `id`
/// with the ids NCMEC assigned (`/submit`'s report id, `/upload`'s file id).
pub(crate) async fn file_details(
    db: &Db,
    user: &User,
    id: i64,
    attachment: i64,
    ncmec: (i64, &str),
    max_decode_pixels: u64,
    now: i64,
) -> Result<String, ServerError> {
    let (view, _) = referred(db, user, id).await?;
    let meta = view.attachments.iter().find(|a| a.id == attachment).ok_or(ReviewError::NotFound("attachment"))?;
    if view.stored.verdicts.get(meta.message) != Some(&StoredVerdict::Verified) {
        return Err(ReviewError::NotFound("verified attachment").into());
    }
    let (_, bytes) = crate::attachments::fetch_by_id(db, meta.id).await?.ok_or(ReviewError::NotFound("attachment"))?;
    let bytes = bytes.ok_or(ReviewError::Purged)?;
    let message = &view.stored.report.messages[meta.message];
    let info = FileInfo {
        report_id: ncmec.0,
        file_id: ncmec.1.to_string(),
        original_file_name: None,
        uploaded_ms: i64::try_from(message.delivery.timestamp_ms).ok(),
        viewed_by_esp: viewed(db, id, meta.message, meta.attachment).await?,
        relevance: Relevance::Reported,
        hashes: vec![
            ("MD5".into(), hex::encode(md5::Md5::digest(&bytes))),
            ("SHA1".into(), hex::encode(sha1::Sha1::digest(&bytes))),
            ("SHA256".into(), meta.sha256.clone()),
        ],
        perceptual: pdq_hex(&bytes, max_decode_pixels).map(|h| ("PDQ".to_string(), h)).into_iter().collect(),
        additional_info: vec![format!(
            "Attachment {} of message {} (sequence {}) of a private end-to-end encrypted conversation, verified by \
             message franking: the sender's commitment opens to exactly these bytes; hashes are of the decrypted \
             file as sent.",
            meta.attachment, meta.message, message.delivery.sequence
        )],
    };
    let xml = frankly_cybertip::file_details_xml(&info, now).map_err(invalid)?;
    let detail = format!("attachment:{attachment} ncmec:{}/{}", ncmec.0, ncmec.1);
    audit::record(db, &user.username, "export-cybertip-file", &format!("report:{id}"), &detail).await?;
    Ok(xml)
}

/// Most bytes of an NCMEC response read.
const MAX_NCMEC_RESPONSE: usize = frankly_cybertip::MAX_RESPONSE_BYTES;

/// NCMEC's credentials: `username:password` on the first line of a file
/// only its owner may read (`cybertipline.credentials_file`).
struct Credentials {
    user: String,
    password: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

fn credentials(path: &std::path::Path) -> Result<Credentials, ServerError> {
    crate::secrets::check_private(path)?;
    let bad = |m: &str| ServerError::Config(format!("{}: {m}", path.display()));
    let len = std::fs::metadata(path).map_err(|e| bad(&e.to_string()))?.len();
    if len > 4096 {
        return Err(bad("longer than 4096 bytes: it should hold one line, username:password"));
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| bad(&e.to_string()))?);
    let line = text.lines().next().unwrap_or_default();
    let (user, password) = line.split_once(':').ok_or_else(|| bad("expected one line, username:password"))?;
    if user.is_empty() || password.is_empty() {
        return Err(bad("expected one line, username:password"));
    }
    Ok(Credentials { user: user.to_string(), password: zeroize::Zeroizing::new(password.to_string()) })
}

/// A refusal by NCMEC or a failure to reach it (502), with what NCMEC said.
fn upstream(message: String) -> ServerError {
    ServerError::refused(axum::http::StatusCode::BAD_GATEWAY, "ncmec_failed", message)
}

/// One call to NCMEC's service: the response read within
/// [`MAX_NCMEC_RESPONSE`] and parsed; any code but 0 is an error naming it.
async fn call(
    request: reqwest::RequestBuilder,
    what: &str,
    creds: &Credentials,
) -> Result<frankly_cybertip::Response, ServerError> {
    let mut response = request
        .basic_auth(&creds.user, Some(creds.password.as_str()))
        .send()
        .await
        .map_err(|e| upstream(format!("{what}: {e}")))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| upstream(format!("{what}: {e}")))? {
        if body.len() + chunk.len() > MAX_NCMEC_RESPONSE {
            return Err(upstream(format!("{what}: answer over {MAX_NCMEC_RESPONSE} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    // Errors come with an XML body and a non-2xx status: read it either way.
    let parsed =
        frankly_cybertip::parse_response(&body).map_err(|e| upstream(format!("{what}: HTTP {status}, {e}")))?;
    if parsed.code != 0 {
        return Err(upstream(format!("{what}: NCMEC answered {} ({})", parsed.code, parsed.description)));
    }
    Ok(parsed)
}

/// Submits report `id` to NCMEC's CyberTipline (a role that may refer it,
/// `[cybertipline] endpoint` and `credentials_file` configured): `/submit`
/// the report, `/upload` each verified attachment (NCMEC's MD5 of what it
/// received must be ours) and `/fileinfo` its details, then `/finish`. One
/// live submission per report; a failure after `/submit` retracts the
/// opened report. Recorded in `cybertip_submissions` and audited.
pub(crate) async fn submit(
    db: &Db,
    user: &User,
    id: i64,
    config: &CybertipConfig,
    max_decode_pixels: u64,
) -> Result<frankly_api::moderation::CybertipSubmitted, ServerError> {
    let (Some(endpoint), Some(creds_file)) = (&config.endpoint, &config.credentials_file) else {
        return Err(ServerError::refused(
            axum::http::StatusCode::CONFLICT,
            "cybertipline_submission_off",
            "submission to NCMEC needs [cybertipline] endpoint and credentials_file (docs/server.md); the export works without",
        ));
    };
    let creds = credentials(creds_file)?;
    let now = crate::now_ms();
    let export = export(db, user, id, config, max_decode_pixels, now).await?;
    let claimed = sqlx::query(
        "INSERT INTO cybertip_submissions (report, status, files, submitted_by, opened_ms) \
         VALUES ($1, 'sending', '[]', $2, $3) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(id)
    .bind(&user.username)
    .bind(now)
    .fetch_optional(db.writer())
    .await?;
    let Some(row) = claimed else {
        return Err(ServerError::refused(
            axum::http::StatusCode::CONFLICT,
            "already_submitted",
            "this report is being or has been submitted to the CyberTipline",
        ));
    };
    let submission: i64 = sqlx::Row::try_get(&row, "id")?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(config.timeout_seconds))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ServerError::Config(format!("NCMEC client: {e}")))?;
    let base = endpoint.trim_end_matches('/');
    let mut ncmec_report: Option<i64> = None;
    let mut sent = Vec::new();
    let outcome: Result<(), ServerError> = async {
        let opened = call(
            client
                .post(format!("{base}/submit"))
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(export.report_xml.clone()),
            "submit",
            &creds,
        )
        .await?;
        let report_id = opened.report_id.ok_or_else(|| upstream("submit: no reportId".into()))?;
        ncmec_report = Some(report_id);
        sqlx::query("UPDATE cybertip_submissions SET ncmec_report_id = $1 WHERE id = $2")
            .bind(report_id)
            .bind(submission)
            .execute(db.writer())
            .await?;
        for file in &export.files {
            let (_, bytes) = crate::attachments::fetch_by_id(db, file.attachment)
                .await?
                .ok_or(ReviewError::NotFound("attachment"))?;
            let bytes = bytes.ok_or(ReviewError::Purged)?;
            let form = reqwest::multipart::Form::new().text("id", report_id.to_string()).part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(format!("attachment-{}", file.attachment)),
            );
            let uploaded = call(client.post(format!("{base}/upload")).multipart(form), "upload", &creds).await?;
            let file_id = uploaded.file_id.ok_or_else(|| upstream("upload: no fileId".into()))?;
            if uploaded.hash.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(file.md5.as_str()) {
                return Err(upstream(format!(
                    "upload of attachment {}: NCMEC's MD5 {:?} is not ours ({}): the file arrived damaged",
                    file.attachment, uploaded.hash, file.md5
                )));
            }
            let details =
                file_details(db, user, id, file.attachment, (report_id, &file_id), max_decode_pixels, crate::now_ms())
                    .await?;
            call(
                client
                    .post(format!("{base}/fileinfo"))
                    .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .body(details),
                "fileinfo",
                &creds,
            )
            .await?;
            sent.push(frankly_api::moderation::CybertipSent { attachment: file.attachment, file_id });
        }
        let form = reqwest::multipart::Form::new().text("id", report_id.to_string());
        call(client.post(format!("{base}/finish")).multipart(form), "finish", &creds).await?;
        Ok(())
    }
    .await;
    let files = serde_json::to_string(&sent).map_err(|e| ServerError::Internal(e.to_string()))?;
    match outcome {
        Ok(()) => {
            let report_id = ncmec_report.unwrap_or_default();
            let mut tx = db.writer().begin().await?;
            sqlx::query(
                "UPDATE cybertip_submissions SET status = 'finished', files = $1, closed_ms = $2 WHERE id = $3",
            )
            .bind(&files)
            .bind(crate::now_ms())
            .bind(submission)
            .execute(&mut *tx)
            .await?;
            let detail = format!("ncmec:{report_id} files:{}", sent.len());
            audit::append(&mut tx, db.backend(), &user.username, "submit-cybertip", &format!("report:{id}"), &detail)
                .await?;
            tx.commit().await?;
            Ok(frankly_api::moderation::CybertipSubmitted { ncmec_report_id: report_id, files: sent })
        }
        Err(e) => {
            let mut retracted = false;
            if let Some(report_id) = ncmec_report {
                let form = reqwest::multipart::Form::new().text("id", report_id.to_string());
                retracted =
                    call(client.post(format!("{base}/retract")).multipart(form), "retract", &creds).await.is_ok();
            }
            let why = format!("{e}{}", if retracted { " (the opened NCMEC report was retracted)" } else { "" });
            let mut tx = db.writer().begin().await?;
            sqlx::query(
                "UPDATE cybertip_submissions SET status = 'failed', files = $1, error = $2, closed_ms = $3 WHERE id = $4",
            )
            .bind(&files)
            .bind(&why)
            .bind(crate::now_ms())
            .bind(submission)
            .execute(&mut *tx)
            .await?;
            audit::append(
                &mut tx,
                db.backend(),
                &user.username,
                "submit-cybertip-failed",
                &format!("report:{id}"),
                &why,
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(report = id, error = %why, "CyberTipline submission failed");
            Err(match e {
                ServerError::Refused { status, code, .. } => {
                    ServerError::Refused { status, code, message: why, message_index: None }
                }
                other => other,
            })
        }
    }
}
