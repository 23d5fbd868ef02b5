//! The one place with unsafe code: FFmpeg reading a video from memory.
//!
//! ffmpeg-next opens only paths and URLs. A video attachment is bytes that
//! must not be written to disk in the clear (it is the plaintext of an
//! end-to-end encrypted message), so FFmpeg gets a custom `AVIOContext` whose
//! read and seek callbacks walk a borrowed slice. Nested opens (playlists,
//! external references) are refused by an `io_open` callback, and only the
//! container formats in [`crate::limits::CONTAINER_FORMATS`] are probed.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr;

use ffmpeg_next::ffi;
use ffmpeg_next::format::context::Input;

/// The AVIO buffer FFmpeg reads through.
const AVIO_BUFFER: usize = 64 * 1024;

struct Reader {
    data: *const u8,
    len: usize,
    pos: usize,
}

/// Copies up to `size` bytes from the slice (FFmpeg's read callback).
unsafe extern "C" fn read(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    // SAFETY: `opaque` is the `Reader` boxed by `MemoryInput::open`, alive
    // until the AVIO context is freed; `data` is valid for `len` bytes for the
    // lifetime `'a` of the `MemoryInput`, and `buf` for `size` bytes (FFmpeg's
    // contract).
    unsafe {
        let reader = &mut *(opaque as *mut Reader);
        let left = reader.len - reader.pos;
        let n = left.min(size.max(0) as usize);
        if n == 0 {
            return ffi::AVERROR_EOF;
        }
        ptr::copy_nonoverlapping(reader.data.add(reader.pos), buf, n);
        reader.pos += n;
        n as c_int
    }
}

/// Seeks in the slice, or answers its size (FFmpeg's seek callback).
unsafe extern "C" fn seek(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in `read`.
    let reader = unsafe { &mut *(opaque as *mut Reader) };
    let len = reader.len as i64;
    if whence & ffi::AVSEEK_SIZE as c_int != 0 {
        return len;
    }
    let target = match whence & !(ffi::AVSEEK_FORCE as c_int) {
        0 => Some(offset),                            // SEEK_SET
        1 => (reader.pos as i64).checked_add(offset), // SEEK_CUR
        2 => len.checked_add(offset),                 // SEEK_END
        _ => None,
    };
    match target {
        Some(t) if (0..=len).contains(&t) => {
            reader.pos = t as usize;
            t
        }
        _ => i64::from(ffi::AVERROR(ffi::EINVAL)),
    }
}

/// Refuses every nested open: a video from a message never makes FFmpeg
/// open another file or URL.
unsafe extern "C" fn refuse_io_open(
    _s: *mut ffi::AVFormatContext,
    _pb: *mut *mut ffi::AVIOContext,
    _url: *const c_char,
    _flags: c_int,
    _options: *mut *mut ffi::AVDictionary,
) -> c_int {
    ffi::AVERROR(ffi::EPERM)
}

/// An opened container over borrowed bytes.
pub(crate) struct MemoryInput<'a> {
    input: ManuallyDrop<Input>,
    pb: *mut ffi::AVIOContext,
    _reader: Box<Reader>,
    _bytes: PhantomData<&'a [u8]>,
}

impl<'a> MemoryInput<'a> {
    /// Probes `bytes` among `formats` (FFmpeg demuxer names, comma-separated)
    /// and reads the stream headers. The decoders FFmpeg opens to probe the
    /// streams get `max_pixels` and one thread too, so a frame larger than
    /// the budget is refused before it is allocated even while probing.
    /// Errors are FFmpeg's.
    pub(crate) fn open(bytes: &'a [u8], formats: &str, max_pixels: u64) -> Result<MemoryInput<'a>, ffmpeg_next::Error> {
        let formats = CString::new(formats).map_err(|_| ffmpeg_next::Error::InvalidData)?;
        let max_pixels =
            CString::new(max_pixels.min(i64::MAX as u64).to_string()).map_err(|_| ffmpeg_next::Error::InvalidData)?;
        let mut reader = Box::new(Reader { data: bytes.as_ptr(), len: bytes.len(), pos: 0 });
        // SAFETY: each pointer is checked for null after allocation; on every
        // error path what was allocated is freed exactly once: the format
        // context by avformat_open_input itself on failure, the AVIO context
        // (and its possibly reallocated buffer) by `free_avio`.
        unsafe {
            let buffer = ffi::av_malloc(AVIO_BUFFER) as *mut u8;
            if buffer.is_null() {
                return Err(ffmpeg_next::Error::Other { errno: ffi::ENOMEM });
            }
            let opaque = &mut *reader as *mut Reader as *mut c_void;
            let pb = ffi::avio_alloc_context(buffer, AVIO_BUFFER as c_int, 0, opaque, Some(read), None, Some(seek));
            if pb.is_null() {
                ffi::av_free(buffer as *mut c_void);
                return Err(ffmpeg_next::Error::Other { errno: ffi::ENOMEM });
            }
            let mut ctx = ffi::avformat_alloc_context();
            if ctx.is_null() {
                free_avio(pb);
                return Err(ffmpeg_next::Error::Other { errno: ffi::ENOMEM });
            }
            (*ctx).pb = pb;
            (*ctx).flags |= ffi::AVFMT_FLAG_CUSTOM_IO as c_int;
            (*ctx).format_whitelist = ffi::av_strdup(formats.as_ptr());
            // No protocol at all (an empty list matches none): the bytes come
            // through `pb`, never through a URL.
            (*ctx).protocol_whitelist = ffi::av_strdup(c"".as_ptr());
            (*ctx).io_open = Some(refuse_io_open);
            let opened = ffi::avformat_open_input(&mut ctx, ptr::null(), ptr::null(), ptr::null_mut());
            if opened < 0 {
                free_avio(pb);
                return Err(ffmpeg_next::Error::from(opened));
            }
            let input = Input::wrap(ctx);
            // One options dictionary per stream for the probing decoders;
            // avformat_find_stream_info leaves unused entries in them, freed here.
            let streams = (*ctx).nb_streams as usize;
            let mut options: Vec<*mut ffi::AVDictionary> = vec![ptr::null_mut(); streams];
            for dict in &mut options {
                ffi::av_dict_set(dict, c"max_pixels".as_ptr(), max_pixels.as_ptr(), 0);
                ffi::av_dict_set(dict, c"threads".as_ptr(), c"1".as_ptr(), 0);
            }
            let options_ptr = if streams == 0 { ptr::null_mut() } else { options.as_mut_ptr() };
            let found = ffi::avformat_find_stream_info(ctx, options_ptr);
            for dict in &mut options {
                ffi::av_dict_free(dict);
            }
            let opened = MemoryInput { input: ManuallyDrop::new(input), pb, _reader: reader, _bytes: PhantomData };
            if found < 0 {
                return Err(ffmpeg_next::Error::from(found));
            }
            Ok(opened)
        }
    }

    pub(crate) fn input(&mut self) -> &mut Input {
        &mut self.input
    }
}

impl Drop for MemoryInput<'_> {
    fn drop(&mut self) {
        // SAFETY: the format context is closed first (it does not close a
        // custom AVIO context), then the AVIO context is freed; the reader box
        // it points to is dropped after this.
        unsafe {
            ManuallyDrop::drop(&mut self.input);
            free_avio(self.pb);
        }
    }
}

/// Frees an AVIO context and its buffer.
///
/// # Safety
/// `pb` came from `avio_alloc_context` and is no longer used.
unsafe fn free_avio(mut pb: *mut ffi::AVIOContext) {
    // SAFETY: per the function's contract.
    unsafe {
        if !pb.is_null() {
            ffi::av_freep(&mut (*pb).buffer as *mut *mut u8 as *mut c_void);
            ffi::avio_context_free(&mut pb);
        }
    }
}

/// Sets the decoder's pixel budget (`max_pixels`: FFmpeg refuses larger
/// frames before allocating them, whatever the container declared) and
/// threading.
pub(crate) fn configure_decoder(context: &mut ffmpeg_next::codec::context::Context, max_pixels: u64, threads: usize) {
    // SAFETY: plain field writes on a context that is not yet opened.
    unsafe {
        let ctx = context.as_mut_ptr();
        (*ctx).max_pixels = i64::try_from(max_pixels).unwrap_or(i64::MAX);
        (*ctx).thread_count = threads.clamp(1, 16) as c_int;
        (*ctx).thread_type = ffi::FF_THREAD_SLICE as c_int;
    }
}

/// The width and height a stream's codec parameters declare.
pub(crate) fn declared_size(parameters: &ffmpeg_next::codec::Parameters) -> (u32, u32) {
    // SAFETY: reads two fields of valid codec parameters.
    let (w, h) = unsafe {
        let p = parameters.as_ptr();
        ((*p).width, (*p).height)
    };
    (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0))
}

/// The line size of plane `index` of a decoded frame, if positive (FFmpeg
/// allows negative ones, which ffmpeg-next's `data()` would misread).
pub(crate) fn positive_linesize(frame: &ffmpeg_next::frame::Video, index: usize) -> Option<usize> {
    // SAFETY: reads one field of a valid frame.
    let linesize = unsafe { (*frame.as_ptr()).linesize.get(index).copied() }?;
    usize::try_from(linesize).ok().filter(|&l| l > 0)
}

/// Makes FFmpeg silent: errors reach callers as values, never on stderr.
/// Also fills ffmpeg-next's table of error messages (`init`), without which
/// its errors display as empty strings.
pub(crate) fn quiet_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // `init` only registers the error strings (and devices, a feature
        // not enabled here); it fails on no FFmpeg this crate builds against.
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Quiet);
    });
}
