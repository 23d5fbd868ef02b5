//! The server's own matching of reported media: a video (declared as a
//! photo) against vPDQ and `video_md5` banks, a banked photo hidden as the
//! middle frame of a GIF, a truncated video beside them; and the review
//! page that plays the video blurred and muted with a frame strip and a
//! timeline of the matched frames.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};

use axum::http::{StatusCode, header};
use common::franked::{conversation, seal, with_attachments};
use common::{Engine, Harness};
use frankly_bank::{Bank, Matcher, SignalType, TextFormat, VideoBank, VideoEntry, VideoMatcher};
use frankly_report::Reason;
use frankly_review::Role;
use frankly_server::{MatchSignal, STRIP_TILE_HEIGHT, ServerBanks};
use image::codecs::gif::GifEncoder;
use image::{Delay, Frame, RgbImage};

fn demo_asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../frankly-demo/assets").join(name)
}

/// A banked clip re-encoded at half size (the demo's).
fn clip() -> Vec<u8> {
    std::fs::read(demo_asset("doorknob-half.mp4")).unwrap()
}

fn pixels(bytes: &[u8]) -> RgbImage {
    let image = image::load_from_memory(bytes).unwrap().to_rgb8();
    image::imageops::resize(&image, 320, 240, image::imageops::FilterType::Triangle)
}

/// A GIF of `frames`.
fn gif(frames: &[RgbImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 30);
        for f in frames {
            let rgba = image::DynamicImage::ImageRgb8(f.clone()).to_rgba8();
            encoder.encode_frame(Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(100, 1))).unwrap();
        }
    }
    out
}

/// A PDQ bank holding `photo`'s hash, a `video_md5` bank holding the clip's
/// MD5, and a video bank holding Meta's published vPDQ of the original clip.
fn banks(photo: &[u8]) -> ServerBanks {
    let pdq = frankly_hash::PdqHasher::new().hash(&frankly_hash::decode(photo, &Default::default()).unwrap().rgb);
    let (photos, _) =
        Bank::import_text("known-photos", SignalType::Pdq, TextFormat::Csv, &format!("{},known\n", pdq.hash), true)
            .unwrap();
    let md5 = format!("{},known-clip\n", frankly_hash::md5_hex(&clip()));
    let (md5s, _) = Bank::import_text("known-files", SignalType::VideoMd5, TextFormat::Csv, &md5, true).unwrap();
    let text = std::fs::read_to_string(demo_asset("doorknob-hd-no-bar.vpdq.txt")).unwrap();
    let mut videos = VideoBank::new("known-videos").unwrap();
    let features = frankly_hash::parse_meta(&text).unwrap();
    let labels = ["known-video".to_owned()].into();
    videos.add(VideoEntry { features, labels, source_id: Some("doorknob-hd-no-bar".into()) }).unwrap();
    ServerBanks { matcher: Matcher::new(vec![photos, md5s]), videos: VideoMatcher::new(vec![videos]) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_video_and_animation_are_matched_and_shown_blurred_with_their_matched_frames() {
    let photo = common::photo();
    let h = Harness::start_with_banks(Engine::Sqlite, |_| {}, banks(&photo)).await.unwrap();
    let clip = clip();
    let truncated = clip[..clip.len() / 3].to_vec();
    let other = vec![0x40u8; 320 * 240 * 3];
    let other = RgbImage::from_raw(320, 240, other).unwrap();
    let animation = gif(&[other.clone(), pixels(&photo), other]);

    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let mut msgs = conversation(&h.keyring(), "conv", "mallory", "bob", 2, now);
    // The sender labels the video as a photo; the server sniffs the bytes.
    let attachments: [(&str, &[u8]); 3] = [("image/jpeg", &clip), ("image/gif", &animation), ("video/mp4", &truncated)];
    with_attachments(&h.keyring(), &mut msgs, &attachments, now + 10);
    let (_, envelope) = seal(msgs, Reason::ChildSafety, &h.server_key());
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);

    let stored = h.stored().await;
    let (id, _, _, report) = &stored[0];
    let of = |attachment: usize, signal: MatchSignal| {
        report.server_matches.iter().filter(move |m| (m.message, m.attachment, m.signal) == (1, attachment, signal))
    };
    // The clip: by its MD5 and by vPDQ, though declared a JPEG.
    let md5: Vec<_> = of(0, MatchSignal::VideoMd5).collect();
    assert_eq!(
        (md5.len(), md5[0].bank.as_str(), md5[0].labels.as_slice()),
        (1, "known-files", ["known-clip".into()].as_slice())
    );
    let vpdq: Vec<_> = of(0, MatchSignal::Vpdq).collect();
    assert_eq!(vpdq.len(), 1, "{:?}", report.server_matches);
    let evidence = vpdq[0].video.as_ref().unwrap();
    assert_eq!(vpdq[0].bank, "known-videos");
    assert_eq!(evidence.source_id.as_deref(), Some("doorknob-hd-no-bar"));
    // Every hashed frame (one a second) matches; the bank holds every frame
    // of the original, so only some of those are matched back.
    assert_eq!(evidence.query_percent, 100.0, "{evidence:?}");
    assert!(evidence.compared_percent > 0.0, "{evidence:?}");
    // The GIF: the banked photo is its frame 1.
    let frames: Vec<u64> = of(1, MatchSignal::Pdq).map(|m| m.frame).collect();
    assert_eq!(frames, [1], "{:?}", report.server_matches);
    // The truncated video matches nothing and is kept with why.
    assert_eq!(report.server_matches.iter().filter(|m| m.attachment == 2).count(), 0);
    assert_eq!(report.videos.len(), 2, "{:?}", report.videos);
    let video = report.videos.iter().find(|v| v.attachment == 0).unwrap();
    assert_eq!((video.message, video.media_type.as_str(), video.problem.as_ref()), (1, "video/mp4", None));
    let hashed: Vec<u64> = video.frames.iter().map(|f| f.number).collect();
    assert!(hashed.len() >= 2, "one frame a second: {hashed:?}");
    let usable: Vec<u64> = video.frames.iter().filter(|f| f.quality >= 50).map(|f| f.number).collect();
    assert_eq!(evidence.matched_frames, usable, "every usable hashed frame matched: {:?}", video.frames);
    let broken = report.videos.iter().find(|v| v.attachment == 2).unwrap();
    assert!(broken.problem.is_some(), "{broken:?}");
    assert!(report.server_matches.len() >= 3);

    // The moderator's page: the video muted and blurred, a strip, a
    // timeline marking exactly the matched frames.
    let m = h.sign_in("cora", Role::ChildSafety).await;
    let (status, _, page) = h.get(&format!("/reports/{id}"), Some(&m.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let media = format!("/reports/{id}/media/1/0");
    assert!(page.contains("<video class=\"media blurred\" muted controls preload=\"metadata\""), "{page}");
    assert!(page.contains(&format!("src=\"{media}\"")));
    assert!(page.contains(&format!("src=\"{media}/strip\"")));
    let timeline = &page[page.find("<ol class=\"timeline\"").unwrap()..];
    let timeline = &timeline[..timeline.find("</ol>").unwrap()];
    assert_eq!(timeline.matches("<li").count(), hashed.len());
    assert_eq!(timeline.matches("class=\"hit\"").count(), evidence.matched_frames.len());
    assert!(page.contains("matches vpdq bank known-videos (known-video): 100 % of its hashed frames match"), "{page}");
    assert!(page.contains("matches video_md5 bank known-files (known-clip): the MD5 of the file is banked"), "{page}");
    assert!(page.contains("matches pdq bank known-photos (known)"), "{page}");
    assert!(page.contains("on frame 1"), "{page}");

    // The bytes play as video; the strip is one JPEG of its tiles.
    let (status, headers, bytes) = h.request(get(&media, &m.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(bytes, clip);
    assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
    // Ranges, so a browser can seek: one range is served as 206; an
    // unsatisfiable one is 416 with the length.
    let ranged = |range: &str| {
        axum::http::Request::get(&media)
            .header(header::COOKIE, &m.cookie)
            .header(header::RANGE, range)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, headers, part) = h.request(ranged("bytes=100-199")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, clip[100..200]);
    assert_eq!(headers[header::CONTENT_RANGE].to_str().unwrap(), format!("bytes 100-199/{}", clip.len()));
    let (status, _, part) = h.request(ranged(&format!("bytes=-{}", clip.len() + 10))).await;
    assert_eq!((status, part.len()), (StatusCode::PARTIAL_CONTENT, clip.len()), "a suffix longer than the file");
    let (status, headers, _) = h.request(ranged(&format!("bytes={}-", clip.len()))).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers[header::CONTENT_RANGE].to_str().unwrap(), format!("bytes */{}", clip.len()));
    let (status, _, whole) = h.request(ranged("bytes=0-1,5-9")).await;
    assert_eq!((status, whole.len()), (StatusCode::OK, clip.len()), "several ranges: the whole body");
    let (status, headers, strip) = h.request(get(&format!("{media}/strip"), &m.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&strip));
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    let strip = image::load_from_memory(&strip).unwrap();
    let tiles = timeline.matches("<li").count().min(frankly_server::STRIP_FRAMES) as u32;
    assert_eq!(strip.height(), STRIP_TILE_HEIGHT);
    assert_eq!(strip.width() % tiles, 0, "{} wide for {tiles} tiles", strip.width());
    let tile_width = strip.width() / tiles;
    assert_eq!(tile_width, STRIP_TILE_HEIGHT * 640 / 360, "the clip's 16:9");
    // No strip for a photo; the truncated video's strip is whatever decoded, or a clear refusal.
    let (status, _, _) = h.request(get(&format!("/reports/{id}/media/1/1/strip"), &m.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = h.request(get(&format!("/reports/{id}/media/1/2/strip"), &m.cookie)).await;
    assert!(
        matches!(status, StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_FOUND),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    // A moderator of another queue sees neither.
    let other = h.sign_in("mo", Role::Moderator).await;
    let (status, _, _) = h.request(get(&format!("{media}/strip"), &other.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

fn get(path: &str, cookie: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(path).header(header::COOKIE, cookie).body(axum::body::Body::empty()).unwrap()
}

/// Reports stored before schema 6 held their attachments inside their JSON
/// content (hex); the migration to schema 6 moves them, once, into
/// `report_attachments`, and the review page and media serve them as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_inside_reports_of_an_older_schema_are_moved_out_by_the_migration() {
    use sqlx::Row;
    let photo = common::photo();
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let mut msgs = conversation(&h.keyring(), "conv", "mallory", "bob", 2, now);
    let pdf: &[u8] = b"%PDF-1.7 not a picture";
    with_attachments(&h.keyring(), &mut msgs, &[("image/jpeg", &photo), ("image/png", pdf)], now + 10);
    let (_, envelope) = seal(msgs, Reason::Harassment, &h.server_key());
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    let (id, _, _, stored) = h.stored().await.remove(0);
    let opening = |s: &frankly_server::StoredReport| s.report.messages[1].opening.clone().unwrap();
    assert!(opening(&stored).attachments.iter().all(|a| a.plaintext.is_empty()), "not in the content");

    // Make the database what schema 5 left: the plaintexts inside the content, no table.
    let pool = sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap();
    let mut old = stored.clone();
    for r in sqlx::query("SELECT message, attachment, bytes FROM report_attachments").fetch_all(&pool).await.unwrap() {
        let (m, a): (i64, i64) = (r.try_get("message").unwrap(), r.try_get("attachment").unwrap());
        old.report.messages[m as usize].opening.as_mut().unwrap().attachments[a as usize].plaintext =
            r.try_get("bytes").unwrap();
    }
    assert_eq!(opening(&old).attachments[0].plaintext, photo);
    sqlx::query("UPDATE reports SET content = $1 WHERE id = $2")
        .bind(serde_json::to_vec(&old).unwrap())
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    // Schema 6 undone, and the later ones with it (7: api_keys rebuilt without
    // its account column; 8: the webhook tables; 9: comments; 10: strikes,
    // legal holds and purges; 11: CyberTipline submissions; 12: Coop actions; 13: search indexes).
    sqlx::raw_sql(
        "DROP TABLE report_attachments; DELETE FROM frankly_migrations WHERE version >= 6; \
         CREATE TABLE api_keys_5 AS SELECT id, name, secret_sha256, scopes, created_ms, revoked_ms FROM api_keys; \
         DROP TABLE api_keys; ALTER TABLE api_keys_5 RENAME TO api_keys; \
         DROP TABLE webhook_deliveries; DROP TABLE webhook_events; DROP TABLE report_comments; \
         DROP TABLE strikes; DROP INDEX reports_retention; ALTER TABLE reports DROP COLUMN legal_hold_ms; \
         ALTER TABLE reports DROP COLUMN legal_hold_by; ALTER TABLE reports DROP COLUMN legal_hold_reason; \
         ALTER TABLE reports DROP COLUMN purged_ms; DROP TABLE cybertip_submissions; DROP TABLE coop_actions; \
         DROP INDEX decisions_appeal; DROP INDEX appeals_report; DROP INDEX audit_actor; DROP INDEX audit_action; \
         DROP INDEX audit_subject",
    )
    .execute(&pool)
    .await
    .unwrap();

    // A restarted server migrates: the bytes are rows again, the content as before.
    drop(h.another_instance().await);
    let (_, _, _, moved) = h.stored().await.remove(0);
    assert_eq!(serde_json::to_value(&moved).unwrap(), serde_json::to_value(&stored).unwrap());
    let rows = sqlx::query("SELECT media_type, size FROM report_attachments ORDER BY attachment")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get::<Option<String>, _>("media_type").unwrap(), r.try_get::<i64, _>("size").unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(rows, [(Some("image/jpeg".to_string()), photo.len() as i64), (None, pdf.len() as i64)]);
    // A third start moves nothing again.
    drop(h.another_instance().await);
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM report_attachments").fetch_one(&pool).await.unwrap().get("n");
    assert_eq!(n, 2);
    pool.close().await;

    // Served by what was sniffed at the move, not by what the sender declared.
    let m = h.sign_in("mo", Role::Moderator).await;
    let (status, headers, bytes) = h.request(get(&format!("/reports/{id}/media/1/0"), &m.cookie)).await;
    assert_eq!(
        (status, &headers[header::CONTENT_TYPE], bytes),
        (StatusCode::OK, &"image/jpeg".parse().unwrap(), photo)
    );
    let (status, headers, bytes) = h.request(get(&format!("/reports/{id}/media/1/1"), &m.cookie)).await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, pdf));
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment");
    let (status, _, _) = h.request(get(&format!("/reports/{id}/media/1/2"), &m.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
