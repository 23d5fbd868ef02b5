//! The report's binary encoding, "FRP2" (`docs/franking.md`, "Report
//! encoding"). Written by hand rather than with a serialisation crate
//! because the format must be specified byte for byte for independent
//! verifiers (no canonicalisation choices, no unknown fields, no duplicate
//! keys) and parsed under explicit limits: every length is checked against
//! its limit and against the bytes left before anything is allocated.

use frankly_franking::{ATTACHMENT_REF_BYTES, Commitment, DeliveryContext, Party, PlatformTag, read_delivery};

use crate::report::{
    Evidence, KeyBytes, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_BODY_BYTES, MAX_CONTEXT_MESSAGES, MAX_EVIDENCE,
    MAX_EVIDENCE_DETAIL_BYTES, MAX_EVIDENCE_KIND_BYTES, MAX_NOTE_BYTES, Opening, Reason, Report, ReportError,
    ReportedAttachment, ReportedMessage,
};

/// First bytes of an encoded report.
pub const REPORT_MAGIC: &[u8; 4] = b"FRP2";

fn bad(m: impl Into<String>) -> ReportError {
    ReportError::Malformed(m.into())
}

fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes a report (its limits checked first).
pub(crate) fn encode(report: &Report) -> Result<Vec<u8>, ReportError> {
    report.check_limits()?;
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(REPORT_MAGIC);
    out.extend_from_slice(&report.report_id);
    put_lp(&mut out, report.reporter.user_id.as_bytes());
    put_lp(&mut out, report.reporter.device_id.as_bytes());
    out.push(report.reason.code());
    put_lp(&mut out, report.note.as_bytes());
    out.extend_from_slice(&report.reported.to_be_bytes());
    out.extend_from_slice(&(report.messages.len() as u16).to_be_bytes());
    for m in &report.messages {
        out.extend_from_slice(&m.commitment.0);
        out.extend_from_slice(&m.tag.key_id.to_be_bytes());
        out.extend_from_slice(&m.tag.mac);
        out.extend_from_slice(&m.delivery.encode().map_err(|e| bad(e.to_string()))?);
        match &m.opening {
            None => out.push(0),
            Some(o) => {
                out.push(1);
                out.extend_from_slice(&o.franking_key.0);
                put_lp(&mut out, o.message_id.as_bytes());
                put_lp(&mut out, &o.body);
                out.push(o.attachments.len() as u8);
                for a in &o.attachments {
                    out.extend_from_slice(&a.reference);
                    put_lp(&mut out, &a.plaintext);
                }
            }
        }
    }
    out.extend_from_slice(&(report.evidence.len() as u16).to_be_bytes());
    for e in &report.evidence {
        put_lp(&mut out, e.kind.as_bytes());
        put_lp(&mut out, e.detail.as_bytes());
    }
    Ok(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ReportError> {
        if n > self.0.len() {
            return Err(bad(format!("{what} truncated")));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ReportError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ReportError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ReportError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn lp(&mut self, limit: usize, what: &str) -> Result<&'a [u8], ReportError> {
        let len = u32::from_be_bytes(self.array(what)?) as usize;
        if len > limit {
            return Err(bad(format!("{what} is {len} bytes (limit {limit})")));
        }
        self.take(len, what)
    }

    fn text(&mut self, limit: usize, what: &str) -> Result<String, ReportError> {
        let bytes = self.lp(limit, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad(format!("{what} is not UTF-8")))
    }

    fn id(&mut self, field: &'static str) -> Result<String, ReportError> {
        let s = self.text(frankly_franking::MAX_ID_BYTES, field)?;
        frankly_franking::check_id(field, &s).map_err(|e| bad(e.to_string()))?;
        Ok(s)
    }
}

/// Parses an encoded report; refuses anything malformed, over a limit, or
/// followed by trailing bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<Report, ReportError> {
    let mut r = Reader(bytes);
    if r.take(4, "magic")? != REPORT_MAGIC {
        return Err(bad("not a frankly v2 report (FRP2)"));
    }
    let report_id = r.array::<16>("report id")?;
    let reporter = Party { user_id: r.id("reporter user_id")?, device_id: r.id("reporter device_id")? };
    let reason = Reason::from_code(r.u8("reason")?)?;
    let note = r.text(MAX_NOTE_BYTES, "note")?;
    let reported = r.u16("reported index")?;
    let count = r.u16("message count")? as usize;
    if count == 0 || count > MAX_CONTEXT_MESSAGES + 1 {
        return Err(bad(format!("{count} messages (1 to {})", MAX_CONTEXT_MESSAGES + 1)));
    }
    let mut messages = Vec::with_capacity(count);
    for i in 0..count {
        let commitment = Commitment(r.array("commitment")?);
        let key_id = u32::from_be_bytes(r.array("tag key id")?);
        let mac = r.array::<32>("tag")?;
        let (delivery, rest): (DeliveryContext, &[u8]) =
            read_delivery(r.0).map_err(|e| bad(format!("message {i} delivery: {e}")))?;
        r.0 = rest;
        let opening = match r.u8("opening flag")? {
            0 => None,
            1 => {
                let franking_key = KeyBytes(r.array("franking key")?);
                let message_id = r.id("message_id")?;
                let body = r.lp(MAX_BODY_BYTES, "body")?.to_vec();
                let n = r.u8("attachment count")? as usize;
                if n > MAX_ATTACHMENTS {
                    return Err(bad(format!("message {i} has {n} attachments (limit {MAX_ATTACHMENTS})")));
                }
                let mut attachments = Vec::with_capacity(n);
                for _ in 0..n {
                    let reference = r.array::<ATTACHMENT_REF_BYTES>("attachment reference")?;
                    let plaintext = r.lp(MAX_ATTACHMENT_BYTES, "attachment")?.to_vec();
                    attachments.push(ReportedAttachment { reference, plaintext });
                }
                Some(Opening { franking_key, message_id, body, attachments })
            }
            f => return Err(bad(format!("message {i} opening flag {f} (0 or 1)"))),
        };
        messages.push(ReportedMessage { commitment, tag: PlatformTag { key_id, mac }, delivery, opening });
    }
    let n = r.u16("evidence count")? as usize;
    if n > MAX_EVIDENCE {
        return Err(bad(format!("{n} evidence items (limit {MAX_EVIDENCE})")));
    }
    let mut evidence = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.text(MAX_EVIDENCE_KIND_BYTES, "evidence kind")?;
        let detail = r.text(MAX_EVIDENCE_DETAIL_BYTES, "evidence detail")?;
        evidence.push(Evidence { kind, detail });
    }
    if !r.0.is_empty() {
        return Err(bad(format!("{} trailing bytes", r.0.len())));
    }
    let report = Report { report_id, reporter, reason, note, reported, messages, evidence };
    report.check_limits()?;
    Ok(report)
}
