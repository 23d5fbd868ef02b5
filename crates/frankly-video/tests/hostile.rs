//! Bad videos get a clear error or a bounded walk, never a panic.
use std::path::{Path, PathBuf};

use frankly_video::{VideoEnd, VideoError, VideoLimits, VideoOptions, VpdqOptions, vpdq, walk_frames};

fn sample(name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/vpdq/videos").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (../shared is needed)", path.display()))
}

fn walk(bytes: &[u8], options: &VideoOptions) -> Result<frankly_video::VideoSummary, VideoError> {
    walk_frames(bytes, options, |_| std::ops::ControlFlow::Continue(()))
}

#[test]
fn empty_and_garbage_are_not_videos() {
    for bytes in [&b""[..], b"not a video at all", &[0u8; 4096]] {
        let err = walk(bytes, &VideoOptions::default()).unwrap_err();
        assert!(matches!(err, VideoError::NotVideo { .. }), "{err}");
        assert!(err.to_string().starts_with("not a video"), "{err}");
    }
}

/// Formats that make FFmpeg open other files or URLs (playlists,
/// concatenation lists, SDP, image sequences) are not among the containers
/// probed: a file naming a real video elsewhere is not a video.
#[test]
fn playlists_and_lists_that_open_other_files_are_not_videos() {
    let elsewhere = Path::new(env!("CARGO_MANIFEST_DIR")).join("../frankly-demo/assets/doorknob-half.mp4");
    let elsewhere = elsewhere.canonicalize().unwrap();
    let at = elsewhere.display();
    let files = [
        format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{at}\n#EXT-X-ENDLIST\n"),
        format!("ffconcat version 1.0\nfile '{at}'\n"),
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
            .to_string(),
        format!("[Reference]\nRef1=file://{at}\n"),
    ];
    for text in files {
        let err = walk(text.as_bytes(), &VideoOptions::default()).unwrap_err();
        assert!(matches!(err, VideoError::NotVideo { .. }), "{text}: {err}");
    }
}

#[test]
fn an_image_is_not_a_video() {
    let mut bytes = Vec::new();
    let image = frankly_hash::RgbImage::from_pixel(64, 64, image::Rgb([10, 200, 30]));
    image.write_to(&mut std::io::Cursor::new(&mut bytes), frankly_hash::ImageFormat::Png).expect("encode png");
    let err = walk(&bytes, &VideoOptions::default()).unwrap_err();
    assert!(matches!(err, VideoError::NotVideo { .. }), "{err}");
}

#[test]
fn a_truncated_mp4_is_refused_or_cut_short() {
    let whole = sample("doorknob-hd-no-bar.mp4");
    // (A cut inside the last packet can go unnoticed: the decoder conceals
    // the missing part, so only whole missing packets are tested.)
    for keep in [whole.len() / 10, whole.len() / 2, whole.len() - 30_000] {
        match walk(&whole[..keep], &VideoOptions::default()) {
            Err(e) => assert!(
                matches!(e, VideoError::NotVideo { .. } | VideoError::NoFrames { .. } | VideoError::TruncatedHeader),
                "{keep}: {e}"
            ),
            Ok(s) => {
                assert!(s.decoded_frames < 120, "{keep} bytes: {s:?}");
                assert!(
                    matches!(s.end, VideoEnd::Truncated { .. } | VideoEnd::Failed { .. }),
                    "{keep} bytes: {:?}",
                    s.end
                );
            }
        }
    }
}

#[test]
fn limits_stop_the_walk_with_what_was_decoded() {
    let bytes = sample("doorknob-hd-no-bar.mp4");
    let limits = VideoLimits { max_decoded_frames: 10, ..Default::default() };
    let s = walk(&bytes, &VideoOptions { limits, ..Default::default() }).expect("walk");
    assert_eq!((s.decoded_frames, s.end), (10, VideoEnd::Limit { limit: "max_decoded_frames" }));

    let limits = VideoLimits { max_pixels: 900_000, ..Default::default() };
    let err = walk(&bytes, &VideoOptions { limits, ..Default::default() }).unwrap_err();
    assert!(matches!(err, VideoError::BadDimensions { width: 1280, height: 720, .. }), "{err}");

    let limits = VideoLimits { max_file_bytes: 1000, ..Default::default() };
    let err = walk(&bytes, &VideoOptions { limits, ..Default::default() }).unwrap_err();
    assert!(matches!(err, VideoError::FileTooLarge { .. }), "{err}");
}

#[test]
fn bad_options_are_refused() {
    let bytes = sample("doorknob-hd-no-bar.mp4");
    for options in [
        VideoOptions { seconds_per_hash: -1.0, ..Default::default() },
        VideoOptions { seconds_per_hash: f64::NAN, ..Default::default() },
        VideoOptions { downsample: Some((0, 10)), ..Default::default() },
    ] {
        let err = vpdq(&bytes, &VpdqOptions { video: options, ..Default::default() }, |_, _| {}).unwrap_err();
        assert!(matches!(err, VideoError::InvalidOption(_)), "{err}");
    }
}

#[test]
fn every_truncation_of_a_small_video_is_handled() {
    // 40 prefixes of a whole video: no panic, and an answer either way.
    let whole = sample("pattern-sd-grey-bar.mp4");
    for keep in (0..whole.len()).step_by(whole.len() / 40 + 1) {
        let _ = walk(&whole[..keep], &VideoOptions::default());
    }
}

/// The offset of the first box `name` (its size field) inside an MP4.
fn find_box(mp4: &[u8], name: &[u8; 4]) -> usize {
    mp4.windows(4).position(|w| w == name).expect("box") - 4
}

#[test]
fn a_ten_hour_duration_header_costs_only_the_real_frames() {
    let mut bytes = sample("doorknob-hd-no-bar.mp4");
    // Version-0 mvhd, tkhd and mdhd: durations set to ten hours in each box's timescale.
    let u32_at = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let mvhd = find_box(&bytes, b"mvhd");
    let movie_scale = u32_at(&bytes, mvhd + 20);
    let ten_hours = |scale: u32| (scale * 36_000).to_be_bytes();
    bytes[mvhd + 24..mvhd + 28].copy_from_slice(&ten_hours(movie_scale));
    let tkhd = find_box(&bytes, b"tkhd");
    bytes[tkhd + 28..tkhd + 32].copy_from_slice(&ten_hours(movie_scale));
    // The edit list's one segment too.
    let elst = find_box(&bytes, b"elst");
    assert_eq!(u32_at(&bytes, elst + 12), 1, "one edit");
    bytes[elst + 16..elst + 20].copy_from_slice(&ten_hours(movie_scale));
    let mdhd = find_box(&bytes, b"mdhd");
    let media_scale = u32_at(&bytes, mdhd + 20);
    bytes[mdhd + 24..mdhd + 28].copy_from_slice(&ten_hours(media_scale));
    // FFmpeg takes the duration from the sample times: every one of the
    // 120 frames now lasts five minutes.
    let stts = find_box(&bytes, b"stts");
    assert_eq!(u32_at(&bytes, stts + 12), 1, "one stts entry");
    assert_eq!(u32_at(&bytes, stts + 16), 120);
    bytes[stts + 20..stts + 24].copy_from_slice(&(media_scale * 300).to_be_bytes());
    let s = walk(&bytes, &VideoOptions { seconds_per_hash: 1.0, ..Default::default() }).expect("walk");
    assert!(s.info.declared_seconds.is_some_and(|d| d > 35_000.0), "{:?}", s.info);
    // The 120 frames that are there, and no more work: each is hashed (one
    // frame every five minutes is less than one a second).
    assert_eq!((s.decoded_frames, s.passed_frames, &s.end), (120, 120, &VideoEnd::Complete), "{s:?}");
}

#[test]
fn a_file_without_frames_is_refused() {
    let whole = sample("doorknob-hd-no-bar.mp4");
    // Everything up to the media data's box header: sample tables that point at nothing.
    let mdat = find_box(&whole, b"mdat");
    let err = walk(&whole[..mdat + 8], &VideoOptions::default()).unwrap_err();
    assert!(matches!(err, VideoError::NoFrames { .. }), "{err}");
    assert!(err.to_string().starts_with("the video has no decodable frame"), "{err}");
}

/// A one-frame Motion-JPEG AVI, written by the AVI (RIFF) layout by hand,
/// whose headers declare `width` x `height` and whose JPEG frame (16x16)
/// declares `frame` in its SOF0 header.
fn mjpeg_avi(width: i32, height: i32, frame: (u16, u16)) -> Vec<u8> {
    let mut jpeg = Vec::new();
    let pixels = frankly_hash::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 128]));
    pixels.write_to(&mut std::io::Cursor::new(&mut jpeg), frankly_hash::ImageFormat::Jpeg).expect("encode jpeg");
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline JPEG");
    jpeg[sof + 5..sof + 7].copy_from_slice(&frame.1.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&frame.0.to_be_bytes());
    let chunk = |id: &[u8; 4], body: &[u8]| {
        let mut c = id.to_vec();
        c.extend((body.len() as u32).to_le_bytes());
        c.extend(body);
        if body.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let list = |kind: &[u8; 4], body: &[u8]| chunk(b"LIST", &[kind.as_slice(), body].concat());
    let le = |v: u32| v.to_le_bytes();
    let avih = [le(33_333), le(0), le(0), le(0x10), le(1), le(0), le(1), le(0), le(width as u32), le(height as u32)]
        .concat()
        .into_iter()
        .chain([0u8; 16])
        .collect::<Vec<u8>>();
    let mut strh = [b"vids".as_slice(), b"MJPG"].concat();
    strh.extend([le(0), le(0), le(0), le(1), le(30), le(0), le(1), le(0), le(u32::MAX), le(0)].concat());
    strh.extend([0u8; 8]);
    let mut strf = [le(40), le(width as u32), le(height as u32)].concat();
    strf.extend([1u8, 0, 24, 0]);
    strf.extend(b"MJPG");
    strf.extend([le(0), le(0), le(0), le(0), le(0)].concat());
    let hdrl = list(
        b"hdrl",
        &[chunk(b"avih", &avih), list(b"strl", &[chunk(b"strh", &strh), chunk(b"strf", &strf)].concat())].concat(),
    );
    let movi = list(b"movi", &chunk(b"00dc", &jpeg));
    let idx1 = chunk(b"idx1", &[b"00dc".as_slice(), &le(0x10), &le(4), &le(jpeg.len() as u32)].concat());
    let body = [b"AVI ".as_slice(), &hdrl, &movi, &idx1].concat();
    chunk(b"RIFF", &body)
}

#[test]
fn a_100000x100000_stream_header_is_refused_before_decoding() {
    // The same file with honest headers is a video of one frame.
    let honest = walk(&mjpeg_avi(16, 16, (16, 16)), &VideoOptions::default()).expect("the hand-made AVI decodes");
    assert_eq!((honest.info.codec.as_str(), honest.decoded_frames), ("mjpeg", 1));
    // A container that claims 100000x100000: FFmpeg's probe decodes the
    // frame and reports its real size, which is all that is decoded.
    let s = walk(&mjpeg_avi(100_000, 100_000, (16, 16)), &VideoOptions::default()).expect("walk");
    assert_eq!((s.info.width, s.info.height, s.decoded_frames), (16, 16, 1));
    // A frame that claims 40000x40000 (1.6 gigapixels, under FFmpeg's own
    // default ceiling): refused before its pixels are allocated, while
    // probing as while decoding, never decoded.
    for header in [(16, 16), (100_000, 100_000), (40_000, 40_000)] {
        match walk(&mjpeg_avi(header.0, header.1, (40_000, 40_000)), &VideoOptions::default()) {
            Err(e) => {
                assert!(matches!(e, VideoError::BadDimensions { .. } | VideoError::NoFrames { .. }), "{header:?}: {e}")
            }
            Ok(s) => panic!("{header:?}: decoded {s:?}"),
        }
    }
}
