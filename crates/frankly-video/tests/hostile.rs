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
            Err(e) => assert!(matches!(e, VideoError::NotVideo { .. } | VideoError::NoFrames { .. }), "{keep}: {e}"),
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
        let err = vpdq(&bytes, &VpdqOptions { video: options, ..Default::default() }, |_| {}).unwrap_err();
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
