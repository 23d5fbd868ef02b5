//! A report's attachments: stored once, as bytes, in `report_attachments`,
//! outside the report's JSON content, and fetched by id.
//!
//! At intake the verified report's attachment plaintexts are taken out of
//! the report (its content keeps everything else, with each plaintext
//! emptied) and written as rows with their size, SHA-256 and the media type
//! sniffed once: an image or video type a browser may show inline, or none
//! (served as a download). Viewing a report reads only the rows' metadata;
//! fetching media reads one row's bytes. Reports stored before schema 6
//! are moved the same way by [`move_out_of_content`], in the migration's
//! transaction.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::ServerError;
use crate::intake::StoredReport;

/// The media type of an image a browser may show inline: JPEG, PNG, GIF or
/// WebP, or of a video container, sniffed by `frankly_hash::sniff` from the
/// bytes (never from what the sender declared, and never SVG or anything
/// else that can carry script).
pub(crate) fn inline_type(bytes: &[u8]) -> Option<&'static str> {
    use frankly_hash::ImageFormat as F;
    match frankly_hash::sniff(bytes) {
        frankly_hash::Sniffed::Image(f @ (F::Jpeg | F::Png | F::Gif | F::WebP)) => Some(f.to_mime_type()),
        sniffed if sniffed.is_video() => sniffed.media_type(),
        _ => None,
    }
}

/// The media type the sender declared in a message body for the attachment
/// `reference` (shown beside the sniffed type, never trusted).
pub(crate) fn declared_type(body: Option<&frankly_franking::Body>, reference: &[u8]) -> Option<String> {
    body?.attachments.iter().find(|(_, r)| r.to_bytes()[..] == *reference).map(|(t, _)| t.clone())
}

/// One attachment taken out of a report, to be written as a row.
#[derive(Debug)]
pub(crate) struct NewAttachment {
    message: i64,
    attachment: i64,
    media_type: Option<&'static str>,
    sha256: [u8; 32],
    bytes: Vec<u8>,
}

/// Takes every attachment plaintext out of `stored` (leaving each empty).
pub(crate) fn take(stored: &mut StoredReport) -> Vec<NewAttachment> {
    let mut out = Vec::new();
    for (m, message) in stored.report.messages.iter_mut().enumerate() {
        let Some(opening) = message.opening.as_mut() else { continue };
        for (a, attachment) in opening.attachments.iter_mut().enumerate() {
            let bytes = std::mem::take(&mut attachment.plaintext);
            out.push(NewAttachment {
                message: i64::try_from(m).unwrap_or(i64::MAX),
                attachment: i64::try_from(a).unwrap_or(i64::MAX),
                media_type: inline_type(&bytes),
                sha256: Sha256::digest(&bytes).into(),
                bytes,
            });
        }
    }
    out
}

/// Writes the attachments of report `report` (its database id).
pub(crate) async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    report: i64,
    attachments: &[NewAttachment],
) -> Result<(), ServerError> {
    for a in attachments {
        sqlx::query(
            "INSERT INTO report_attachments (report, message, attachment, media_type, size, sha256, bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(report)
        .bind(a.message)
        .bind(a.attachment)
        .bind(a.media_type)
        .bind(i64::try_from(a.bytes.len()).unwrap_or(i64::MAX))
        .bind(a.sha256.as_slice())
        .bind(a.bytes.as_slice())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Moves the attachments of every report stored before schema 6 out of its
/// content into rows. A report this build cannot parse (franking v1, or
/// damaged) is left as it is.
pub(crate) async fn move_out_of_content(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<u64, ServerError> {
    let ids: Vec<i64> = sqlx::query("SELECT id FROM reports ORDER BY id")
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut moved = 0;
    // One report at a time, so memory holds one report's attachments.
    for id in ids {
        let content: Vec<u8> = sqlx::query("SELECT content FROM reports WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("content")?;
        let Ok(mut stored) = serde_json::from_slice::<StoredReport>(&content) else { continue };
        let attachments = take(&mut stored);
        if attachments.is_empty() {
            continue;
        }
        insert(tx, id, &attachments).await?;
        let content = serde_json::to_vec(&stored).map_err(|e| ServerError::Internal(e.to_string()))?;
        sqlx::query("UPDATE reports SET content = $1 WHERE id = $2").bind(content).bind(id).execute(&mut **tx).await?;
        moved += 1;
    }
    Ok(moved)
}

/// An attachment's row without its bytes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttachmentMeta {
    /// Its id (what media is fetched by).
    pub id: i64,
    /// The message's index in the report.
    pub message: usize,
    /// The attachment's index in the message.
    pub attachment: usize,
    /// The sniffed media type, if a browser may show it inline.
    pub media_type: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Whether the bytes are still stored (retention purges them).
    pub stored: bool,
}

fn index(r: &sqlx::any::AnyRow, column: &str) -> Result<usize, ServerError> {
    let v: i64 = r.try_get(column)?;
    usize::try_from(v).map_err(|_| ServerError::Internal(format!("report_attachments.{column} is {v}")))
}

fn meta(r: &sqlx::any::AnyRow) -> Result<AttachmentMeta, ServerError> {
    Ok(AttachmentMeta {
        id: r.try_get("id")?,
        message: index(r, "message")?,
        attachment: index(r, "attachment")?,
        media_type: r.try_get("media_type")?,
        size: r.try_get("size")?,
        sha256: hex::encode(r.try_get::<Vec<u8>, _>("sha256")?),
        stored: r.try_get::<i64, _>("stored")? != 0,
    })
}

const META_COLUMNS: &str = "id, message, attachment, media_type, size, sha256, CAST(CASE WHEN bytes IS NULL THEN 0 ELSE 1 END AS BIGINT) AS stored";

/// The attachments of a report, in report order.
pub(crate) async fn of_report(db: &crate::Db, report: i64) -> Result<Vec<AttachmentMeta>, ServerError> {
    sqlx::query(&format!(
        "SELECT {META_COLUMNS} FROM report_attachments WHERE report = $1 ORDER BY message, attachment"
    ))
    .bind(report)
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(meta)
    .collect()
}

/// One attachment with its bytes (`None` once purged) and the report it
/// belongs to, by its address in the report.
pub(crate) async fn fetch(
    db: &crate::Db,
    report: i64,
    message: usize,
    attachment: usize,
) -> Result<Option<(AttachmentMeta, Option<Vec<u8>>)>, ServerError> {
    let (Ok(message), Ok(attachment)) = (i64::try_from(message), i64::try_from(attachment)) else { return Ok(None) };
    let row = sqlx::query(&format!(
        "SELECT {META_COLUMNS}, bytes FROM report_attachments WHERE report = $1 AND message = $2 AND attachment = $3"
    ))
    .bind(report)
    .bind(message)
    .bind(attachment)
    .fetch_optional(db.reader())
    .await?;
    row.map(|r| Ok((meta(&r)?, r.try_get("bytes")?))).transpose()
}

/// One attachment with its bytes (`None` once purged), by its id.
pub(crate) async fn fetch_by_id(
    db: &crate::Db,
    id: i64,
) -> Result<Option<(AttachmentMeta, Option<Vec<u8>>)>, ServerError> {
    let row = sqlx::query(&format!("SELECT {META_COLUMNS}, bytes FROM report_attachments WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    row.map(|r| Ok((meta(&r)?, r.try_get("bytes")?))).transpose()
}

#[cfg(test)]
mod tests {
    use super::inline_type;

    #[test]
    fn inline_types_are_sniffed() {
        assert_eq!(inline_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(inline_type(b"GIF89a"), Some("image/gif"));
        assert_eq!(inline_type(b"\x89PNG\r\n\x1a\n"), Some("image/png"));
        assert_eq!(inline_type(b"BM\0\0"), None, "shown inline only as the four web formats");
        assert_eq!(inline_type(b"\0\0\0\x18ftypisom"), Some("video/mp4"));
        assert_eq!(inline_type(b"%PDF-1.7"), None);
        assert_eq!(inline_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(inline_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
    }
}
