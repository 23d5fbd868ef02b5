//! Finding and loading the images of a corpus.

use std::path::{Path, PathBuf};

use frankly_hash::{DecodeOptions, RgbImage};

use crate::EvalError;

/// File extensions taken as images when listing a corpus (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "jfif"];

/// Most directory levels walked below a corpus root.
pub const MAX_CORPUS_DEPTH: usize = 16;

/// An image file of a corpus, named by its path relative to the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusImage {
    /// Path relative to the corpus root, with `/` separators.
    pub name: String,
    /// Where the file is.
    pub path: PathBuf,
}

/// Lists the image files under `root` (recursively, sorted by name).
pub fn list_images(root: &Path) -> Result<Vec<CorpusImage>, EvalError> {
    list(root, has_image_extension)
}

/// Lists every file under `root` (recursively, sorted by name), for
/// callers that tell files apart by their bytes.
pub(crate) fn list_files(root: &Path) -> Result<Vec<CorpusImage>, EvalError> {
    list(root, |_| true)
}

fn list(root: &Path, keep: fn(&Path) -> bool) -> Result<Vec<CorpusImage>, EvalError> {
    let mut out = Vec::new();
    walk(root, root, 0, keep, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    keep: fn(&Path) -> bool,
    out: &mut Vec<CorpusImage>,
) -> Result<(), EvalError> {
    if depth > MAX_CORPUS_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EvalError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| EvalError::io(&path, e))?;
        if kind.is_dir() {
            walk(root, &path, depth + 1, keep, out)?;
        } else if kind.is_file() && keep(&path) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push(CorpusImage { name, path });
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(e)))
}

/// Reads and decodes one image within `options`' limits.
pub fn load_image(path: &Path, options: &DecodeOptions) -> Result<RgbImage, EvalError> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    let decoded =
        frankly_hash::decode(&bytes, options).map_err(|source| EvalError::Decode { path: path.into(), source })?;
    Ok(decoded.rgb)
}
