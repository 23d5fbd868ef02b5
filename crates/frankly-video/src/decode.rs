//! Walking the frames of a video in memory, within [`VideoLimits`].

use std::ops::ControlFlow;

use ffmpeg_next::format::Pixel;
use ffmpeg_next::media::Type;
use ffmpeg_next::software::scaling;
use ffmpeg_next::{Error as FfError, Packet, codec, frame};

use crate::ffi::{self, MemoryInput};
use crate::limits::{CONTAINER_FORMATS, VIDEO_CODECS, VideoLimits};
use crate::yuv::{Chroma, YuvToRgb};

/// How to walk a video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    /// Limits on the input.
    pub limits: VideoLimits,
    /// Pass one frame every this many seconds, counted in frames at the
    /// stream's average frame rate as Meta's vPDQ does (`int(seconds × fps)`
    /// frames, at least 1); 0 passes every frame.
    pub seconds_per_hash: f64,
    /// Scale each passed frame to this width and height (libswscale's area
    /// average, as Meta's current vPDQ does) instead of the decoded size.
    pub downsample: Option<(u32, u32)>,
    /// Decoder threads (slice threading; 1 on a device that scans beside
    /// other work).
    pub threads: usize,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions { limits: VideoLimits::default(), seconds_per_hash: 0.0, downsample: None, threads: 1 }
    }
}

/// What the container and stream say about a video (declared, not trusted).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VideoInfo {
    /// The demuxer FFmpeg probed (for example `mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    /// The video codec (for example `h264`).
    pub codec: String,
    /// Width of the video stream.
    pub width: u32,
    /// Height of the video stream.
    pub height: u32,
    /// Average frame rate (or, if none, the stream's base rate).
    pub frame_rate: Option<f64>,
    /// Frame count the container declares, if any.
    pub declared_frames: Option<u64>,
    /// Duration the container declares, in seconds, if any.
    pub declared_seconds: Option<f64>,
}

/// One frame passed to the callback of [`walk_frames`].
#[derive(Debug)]
pub struct VideoFrame<'a> {
    /// Frame number in the order the decoder output them, from 0 (Meta's
    /// `frame_number`).
    pub number: u64,
    /// Presentation time in seconds from the start of the stream, if the
    /// frame has one.
    pub presentation_seconds: Option<f64>,
    /// Meta's timestamp: frame number ÷ average frame rate, in single
    /// precision as Meta's tool computes it (wrong for variable frame rates).
    pub frame_rate_seconds: Option<f64>,
    /// Width of `rgb`.
    pub width: u32,
    /// Height of `rgb`.
    pub height: u32,
    /// Tightly packed 8-bit RGB.
    pub rgb: &'a [u8],
    /// Whether the RGB came from the exact converter (identical on every CPU
    /// to libswscale's C code) rather than from libswscale itself (whose x86
    /// SIMD code differs from its C code).
    pub exact: bool,
}

/// How a walk ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum VideoEnd {
    /// Every frame was decoded.
    Complete,
    /// The container ended before the frames it declared: fewer frames
    /// decoded than `declared`.
    Truncated {
        /// Frames the container declared.
        declared: u64,
    },
    /// A limit stopped the walk; the frames before it were passed.
    Limit {
        /// Which limit (for example `max_decoded_frames`).
        limit: &'static str,
    },
    /// Reading or decoding failed part-way; the frames before it were passed.
    Failed {
        /// Frames decoded before the failure.
        after_frames: u64,
        /// FFmpeg's error.
        error: String,
    },
    /// The callback asked to stop.
    Stopped,
}

impl VideoEnd {
    /// Why the walk stopped before the end of the video, for people (the
    /// frames before were passed all the same); `None` when it decoded every
    /// frame or its callback stopped it.
    pub fn cut_short(&self) -> Option<String> {
        match self {
            VideoEnd::Complete | VideoEnd::Stopped => None,
            VideoEnd::Truncated { declared } => {
                Some(format!("the video ends before the {declared} frames it declares"))
            }
            VideoEnd::Limit { limit } => Some(format!("the video is over the limit {limit}")),
            VideoEnd::Failed { after_frames, error } => {
                Some(format!("decoding failed after {after_frames} frames ({error})"))
            }
        }
    }
}

/// What [`walk_frames`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VideoSummary {
    /// What the container declared.
    pub info: VideoInfo,
    /// Frames decoded.
    pub decoded_frames: u64,
    /// Frames passed to the callback.
    pub passed_frames: u64,
    /// Of those, frames converted by libswscale (not the exact converter):
    /// their RGB, and so their hashes, can differ by CPU.
    pub swscale_frames: u64,
    /// Damaged packets or frames the decoder skipped.
    pub decode_errors: u32,
    /// How it ended.
    pub end: VideoEnd,
}

/// Why a video could not be walked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    /// The file is over `max_file_bytes`.
    #[error("video is {size} bytes, over the limit of {limit}")]
    FileTooLarge {
        /// Size of the file.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// FFmpeg did not recognise one of the allowed containers.
    #[error("not a video in a supported container ({reason})")]
    NotVideo {
        /// FFmpeg's error.
        reason: String,
    },
    /// The container has no video stream.
    #[error("the container has no video stream")]
    NoVideoStream,
    /// The codec is not one of [`VIDEO_CODECS`].
    #[error("video codec {codec} is not supported")]
    UnsupportedCodec {
        /// FFmpeg's codec name.
        codec: String,
    },
    /// The stream's frames are too large (or empty).
    #[error("video frames of {width}x{height} are outside the limits (1 to {limit} per side, {max_pixels} pixels)")]
    BadDimensions {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Largest side.
        limit: u32,
        /// Largest frame.
        max_pixels: u64,
    },
    /// The stream needs a frame rate (for `seconds_per_hash`) and declares
    /// none.
    #[error("the video declares no frame rate, so frames cannot be picked every {seconds} seconds")]
    NoFrameRate {
        /// The option.
        seconds: f64,
    },
    /// An option is out of range.
    #[error("invalid video option: {0}")]
    InvalidOption(String),
    /// FFmpeg failed to set up the decoder or converter.
    #[error("cannot decode the video: {0}")]
    Decoder(String),
    /// The file ends inside the container's header (a truncated download
    /// or upload): not one frame can be found.
    #[error("the video ends inside its container header (truncated)")]
    TruncatedHeader,
    /// Not one frame decoded.
    #[error("the video has no decodable frame ({end})")]
    NoFrames {
        /// How the walk ended.
        end: String,
    },
}

/// Decodes the first video stream of `bytes` (not an attached cover
/// picture), converts each passed frame to 8-bit RGB and calls `each` on it,
/// one frame in memory at a time. Frames are passed in decoder output order.
pub fn walk_frames(
    bytes: &[u8],
    options: &VideoOptions,
    mut each: impl FnMut(&VideoFrame<'_>) -> ControlFlow<()>,
) -> Result<VideoSummary, VideoError> {
    ffi::quiet_logs();
    let limits = &options.limits;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(VideoError::FileTooLarge { size: bytes.len() as u64, limit: limits.max_file_bytes });
    }
    if !(options.seconds_per_hash.is_finite() && options.seconds_per_hash >= 0.0) {
        return Err(VideoError::InvalidOption(format!(
            "seconds per hash must be a non-negative number, not {}",
            options.seconds_per_hash
        )));
    }
    if let Some((w, h)) = options.downsample
        && (w == 0 || h == 0 || w > limits.max_dimension || h > limits.max_dimension)
    {
        return Err(VideoError::InvalidOption(format!(
            "downsample size {w}x{h} must be 1 to {} per side",
            limits.max_dimension
        )));
    }
    if bytes.is_empty() {
        return Err(VideoError::NotVideo { reason: "empty file".into() });
    }
    let mut opened = MemoryInput::open(bytes, CONTAINER_FORMATS, limits.max_pixels).map_err(|e| match e {
        ffmpeg_next::Error::Eof => VideoError::TruncatedHeader,
        _ if iso_box_runs_past_end(bytes) => VideoError::TruncatedHeader,
        // Some FFmpeg codes have no message.
        e if e.to_string().is_empty() => VideoError::NotVideo { reason: format!("FFmpeg error {}", i32::from(e)) },
        e => VideoError::NotVideo { reason: e.to_string() },
    })?;
    let input = opened.input();
    let container = input.format().name().to_string();
    let stream = input
        .streams()
        .find(|s| {
            s.parameters().medium() == Type::Video
                && s.disposition().bits() & ffmpeg_next::format::stream::Disposition::ATTACHED_PIC.bits() == 0
        })
        .ok_or(VideoError::NoVideoStream)?;
    let index = stream.index();
    let time_base = f64::from(stream.time_base());
    let start_time = stream.start_time();
    let rate = |r: ffmpeg_next::Rational| {
        let f = f64::from(r);
        (r.numerator() > 0 && r.denominator() > 0 && f.is_finite() && f > 0.0).then_some(f)
    };
    let frame_rate = rate(stream.avg_frame_rate()).or_else(|| rate(stream.rate()));
    let declared_frames = u64::try_from(stream.frames()).ok().filter(|&n| n > 0);
    let declared_seconds = (stream.duration() > 0 && time_base > 0.0).then(|| stream.duration() as f64 * time_base);
    let id = stream.parameters().id();
    let codec_name = id.name().to_string();
    if !VIDEO_CODECS.contains(&codec_name.as_str()) {
        return Err(VideoError::UnsupportedCodec { codec: codec_name });
    }
    let mut context = codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| VideoError::Decoder(e.to_string()))?;
    ffi::configure_decoder(&mut context, limits.max_pixels, options.threads);
    let bad_dimensions = |width: u32, height: u32| VideoError::BadDimensions {
        width,
        height,
        limit: limits.max_dimension,
        max_pixels: limits.max_pixels,
    };
    let (width, height) = ffi::declared_size(&stream.parameters());
    if !dimensions_ok(width, height, limits) {
        return Err(bad_dimensions(width, height));
    }
    let mut decoder = context.decoder().video().map_err(|e| match e {
        FfError::InvalidData => VideoError::Decoder(format!("the {codec_name} stream's parameters are invalid")),
        e => VideoError::Decoder(e.to_string()),
    })?;
    let (width, height) = (decoder.width(), decoder.height());
    if !dimensions_ok(width, height, limits) {
        return Err(bad_dimensions(width, height));
    }
    let frame_mod = if options.seconds_per_hash == 0.0 {
        1
    } else {
        let fps = frame_rate.ok_or(VideoError::NoFrameRate { seconds: options.seconds_per_hash })?;
        ((options.seconds_per_hash * fps) as u64).max(1)
    };
    let info = VideoInfo { container, codec: codec_name, width, height, frame_rate, declared_frames, declared_seconds };
    let mut walk = Walk {
        options,
        frame_mod,
        frame_rate,
        time_base,
        start_time: if start_time == ffmpeg_next::ffi::AV_NOPTS_VALUE { 0 } else { start_time },
        converters: [None, None],
        scaler: None,
        rgb: Vec::new(),
        decoded: 0,
        decoded_pixels: 0,
        passed: 0,
        swscale: 0,
        errors: 0,
    };

    let mut packet = Packet::empty();
    let mut packets = 0u64;
    let mut end = None;
    let mut cut = false;
    loop {
        if packets == limits.max_packets {
            end = Some(VideoEnd::Limit { limit: "max_packets" });
            break;
        }
        match packet.read(opened.input()) {
            Ok(()) => packets += 1,
            Err(FfError::Eof) => break,
            Err(e) => {
                end = Some(VideoEnd::Failed { after_frames: walk.decoded, error: e.to_string() });
                break;
            }
        }
        if packet.stream() != index {
            continue;
        }
        // FFmpeg marks a packet the file ends in the middle of.
        cut |= packet.is_corrupt();
        if decoder.send_packet(&packet).is_err() {
            walk.errors += 1;
            if walk.errors > limits.max_decode_errors {
                end = Some(VideoEnd::Failed {
                    after_frames: walk.decoded,
                    error: format!("more than {} damaged packets", limits.max_decode_errors),
                });
                break;
            }
            continue;
        }
        if let Some(stop) = walk.drain(&mut decoder, &mut each) {
            end = Some(stop);
            break;
        }
    }
    // Flush the frames still in the decoder unless a limit or the caller
    // stopped the walk.
    if matches!(end, None | Some(VideoEnd::Failed { .. }))
        && decoder.send_eof().is_ok()
        && let Some(stop) = walk.drain(&mut decoder, &mut each)
    {
        end = Some(stop);
    }
    let end = end.unwrap_or(match info.declared_frames {
        // A cut MP4 keeps its index: the container ends before the frames it lists.
        Some(declared) if walk.decoded < declared || cut => VideoEnd::Truncated { declared },
        None if cut => VideoEnd::Truncated { declared: walk.decoded },
        _ => VideoEnd::Complete,
    });
    if walk.decoded == 0 {
        return Err(VideoError::NoFrames { end: describe(&end) });
    }
    Ok(VideoSummary {
        info,
        decoded_frames: walk.decoded,
        passed_frames: walk.passed,
        swscale_frames: walk.swscale,
        decode_errors: walk.errors,
        end,
    })
}

fn describe(end: &VideoEnd) -> String {
    match end {
        VideoEnd::Complete => "the stream ended".into(),
        VideoEnd::Truncated { declared } => format!("the file ends before its {declared} declared frames"),
        VideoEnd::Limit { limit } => format!("stopped by {limit}"),
        VideoEnd::Failed { error, .. } => error.clone(),
        VideoEnd::Stopped => "stopped".into(),
    }
}

fn dimensions_ok(width: u32, height: u32, limits: &VideoLimits) -> bool {
    width > 0
        && height > 0
        && width <= limits.max_dimension
        && height <= limits.max_dimension
        && u64::from(width) * u64::from(height) <= limits.max_pixels
}

struct Walk<'o> {
    options: &'o VideoOptions,
    frame_mod: u64,
    frame_rate: Option<f64>,
    time_base: f64,
    start_time: i64,
    /// Exact converters, limited and full range, made on first use.
    converters: [Option<Box<YuvToRgb>>; 2],
    /// libswscale context for (format, width, height) → RGB24 at the output size.
    scaler: Option<(Pixel, u32, u32, scaling::Context, frame::Video)>,
    rgb: Vec<u8>,
    decoded: u64,
    decoded_pixels: u64,
    passed: u64,
    swscale: u64,
    errors: u32,
}

impl Walk<'_> {
    /// Receives every frame the decoder has ready. `Some` ends the walk.
    fn drain(
        &mut self,
        decoder: &mut ffmpeg_next::decoder::Video,
        each: &mut impl FnMut(&VideoFrame<'_>) -> ControlFlow<()>,
    ) -> Option<VideoEnd> {
        let limits = &self.options.limits;
        let mut decoded = frame::Video::empty();
        loop {
            match decoder.receive_frame(&mut decoded) {
                Ok(()) => {}
                Err(FfError::Eof) => return None,
                Err(FfError::Other { errno }) if errno == ffmpeg_next::ffi::EAGAIN => return None,
                Err(e) => {
                    self.errors += 1;
                    if self.errors > limits.max_decode_errors {
                        return Some(VideoEnd::Failed { after_frames: self.decoded, error: e.to_string() });
                    }
                    return None;
                }
            }
            if self.decoded == limits.max_decoded_frames {
                return Some(VideoEnd::Limit { limit: "max_decoded_frames" });
            }
            let (width, height) = (decoded.width(), decoded.height());
            if !dimensions_ok(width, height, limits) {
                return Some(VideoEnd::Failed {
                    after_frames: self.decoded,
                    error: format!("a frame of {width}x{height} is outside the limits"),
                });
            }
            self.decoded_pixels += u64::from(width) * u64::from(height);
            if self.decoded_pixels > limits.max_decoded_pixels {
                return Some(VideoEnd::Limit { limit: "max_decoded_pixels" });
            }
            let number = self.decoded;
            self.decoded += 1;
            if !number.is_multiple_of(self.frame_mod) {
                continue;
            }
            let (out_w, out_h, exact) = match self.convert(&decoded) {
                Ok(converted) => converted,
                Err(error) => return Some(VideoEnd::Failed { after_frames: number, error }),
            };
            self.passed += 1;
            if !exact {
                self.swscale += 1;
            }
            let presentation_seconds =
                decoded.timestamp().map(|ts| (ts.saturating_sub(self.start_time) as f64 * self.time_base).max(0.0));
            let frame_rate_seconds = self.frame_rate.map(|fps| f64::from(number as f32 / fps as f32));
            let frame = VideoFrame {
                number,
                presentation_seconds,
                frame_rate_seconds,
                width: out_w,
                height: out_h,
                rgb: &self.rgb,
                exact,
            };
            if each(&frame).is_break() {
                return Some(VideoEnd::Stopped);
            }
        }
    }

    /// Converts a decoded frame into `self.rgb`: (width, height, exact).
    fn convert(&mut self, decoded: &frame::Video) -> Result<(u32, u32, bool), String> {
        let (width, height) = (decoded.width(), decoded.height());
        if self.options.downsample.is_none() {
            let layout = match decoded.format() {
                Pixel::YUV420P | Pixel::YUVA420P => Some((Chroma::Yuv420, false)),
                Pixel::YUVJ420P => Some((Chroma::Yuv420, true)),
                Pixel::YUV422P => Some((Chroma::Yuv422, false)),
                Pixel::YUVJ422P => Some((Chroma::Yuv422, true)),
                _ => None,
            };
            // libswscale takes its unscaled C converter only for an even height.
            if let Some((chroma, full_range)) = layout
                && height % 2 == 0
            {
                let planes = exact_planes(decoded, chroma)?;
                let converter =
                    self.converters[usize::from(full_range)].get_or_insert_with(|| Box::new(YuvToRgb::new(full_range)));
                converter.convert(chroma, width as usize, height as usize, planes, &mut self.rgb);
                return Ok((width, height, true));
            }
        }
        let (out_w, out_h) = self.options.downsample.unwrap_or((width, height));
        let format = decoded.format();
        let stale = !matches!(&self.scaler, Some((f, w, h, _, _)) if *f == format && *w == width && *h == height);
        if stale {
            let context =
                scaling::Context::get(format, width, height, Pixel::RGB24, out_w, out_h, scaling::Flags::AREA)
                    .map_err(|e| format!("cannot convert {format:?} frames to RGB: {e}"))?;
            self.scaler = Some((format, width, height, context, frame::Video::empty()));
        }
        let Some((_, _, _, context, out)) = self.scaler.as_mut() else {
            return Err("no converter".into());
        };
        context.run(decoded, out).map_err(|e| format!("cannot convert a frame to RGB: {e}"))?;
        let row = out_w as usize * 3;
        let stride = ffi::positive_linesize(out, 0).ok_or("the converter gave a negative line size")?;
        let data = out.data(0);
        self.rgb.clear();
        for y in 0..out_h as usize {
            let line = data.get(y * stride..y * stride + row).ok_or("the converter gave a short frame")?;
            self.rgb.extend_from_slice(line);
        }
        Ok((out_w, out_h, false))
    }
}

/// The Y, U and V planes of a decoded frame, checked to hold what the exact
/// converter reads.
fn exact_planes(decoded: &frame::Video, chroma: Chroma) -> Result<[(&[u8], usize); 3], String> {
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    let chroma_width = width.div_ceil(2);
    let chroma_rows = match chroma {
        Chroma::Yuv420 => height / 2,
        // Rows 0, 2, …, height - 2 are read.
        Chroma::Yuv422 => height - 1,
    };
    let plane = |index: usize, row: usize, rows: usize| -> Result<(&[u8], usize), String> {
        let stride = ffi::positive_linesize(decoded, index)
            .filter(|&s| s >= row)
            .ok_or_else(|| format!("plane {index} has an unusable line size"))?;
        let data = decoded.data(index);
        if rows > 0 && data.len() < stride * (rows - 1) + row {
            return Err(format!("plane {index} is shorter than the frame"));
        }
        Ok((data, stride))
    };
    Ok([plane(0, width, height)?, plane(1, chroma_width, chroma_rows)?, plane(2, chroma_width, chroma_rows)?])
}

/// Whether `bytes` are an ISO base media file (MP4, MOV, 3GP: `ftyp` first)
/// whose top-level boxes run past the end of the file: a cut download or
/// upload rather than a file of another kind.
fn iso_box_runs_past_end(bytes: &[u8]) -> bool {
    if bytes.get(4..8) != Some(b"ftyp") {
        return false;
    }
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as u64;
        let size = match size {
            // 64-bit size in the next 8 bytes.
            1 => match bytes.get(at + 8..at + 16) {
                Some(b) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                None => return true,
            },
            // "To the end of the file".
            0 => return false,
            s => s,
        };
        if size < 8 {
            return false;
        }
        match at.checked_add(usize::try_from(size).unwrap_or(usize::MAX)) {
            Some(next) if next <= bytes.len() => at = next,
            _ => return true,
        }
    }
    at < bytes.len()
}
