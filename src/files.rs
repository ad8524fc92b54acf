//! Reading input files safely: regular files only (a FIFO or a device such as /dev/zero would
//! block or fill memory), with a size limit checked before reading and enforced while reading,
//! and decompression bounded the same way. Every refusal names the file and says what to do.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Largest text input (recipes, mixture files, model cards, configs).
pub const MAX_TEXT_BYTES: u64 = 256 << 20;
/// Largest binary input (arrays, images, data sets), compressed or not.
pub const MAX_DATA_BYTES: u64 = 4 << 30;
/// Largest decompressed data set (a gzip bomb stops here, not at the end of memory).
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;
/// Largest number of elements in one array (2^28 floats: 1 GiB as f32).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// The bytes of a regular file of at most `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(Error::file(
            path,
            "is not a regular file (a folder, a pipe or a device cannot be an input)",
        ));
    }
    if meta.len() > max {
        return Err(too_big(path, meta.len(), max));
    }
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    bounded(file, path, max)
}

/// The text of a regular file of at most [`MAX_TEXT_BYTES`].
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read(path, MAX_TEXT_BYTES)?;
    String::from_utf8(bytes).map_err(|_| Error::file(path, "is not UTF-8 text"))
}

/// Everything `reader` yields, failing past `max` bytes (a file that grows while read, a
/// decompression bomb).
pub fn bounded(reader: impl Read, path: &Path, max: u64) -> Result<Vec<u8>> {
    let mut out = vec![];
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if out.len() as u64 > max {
        return Err(too_big(path, out.len() as u64, max));
    }
    Ok(out)
}

fn too_big(path: &Path, size: u64, max: u64) -> Error {
    Error::file(
        path,
        format!(
            "is too large ({} MiB, or more, once decompressed; the limit is {} MiB)",
            size >> 20,
            max >> 20
        ),
    )
}

/// The product of `dims`, or an error when it overflows or exceeds [`MAX_ELEMENTS`].
pub fn element_count(what: &str, dims: &[usize]) -> std::result::Result<usize, String> {
    let n = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format!("{what} {dims:?} has more elements than this machine can address")
        })?;
    if n > MAX_ELEMENTS {
        return Err(format!(
            "{what} {dims:?} has {n} elements; the limit is {MAX_ELEMENTS} (reduce the size)"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_devices_and_oversized_inputs_are_refused() {
        assert!(read(Path::new("/dev/zero"), 1 << 20).is_err());
        let dir = std::env::temp_dir().join(format!("pl-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read(&dir, 1 << 20).is_err(), "a folder is no input");
        let f = dir.join("big");
        std::fs::write(&f, vec![0u8; 2048]).unwrap();
        assert!(
            read(&f, 1024)
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        assert_eq!(read(&f, 4096).unwrap().len(), 2048);
        let bomb = std::io::repeat(0).take(10_000);
        assert!(bounded(bomb, &f, 1000).is_err());
        assert!(element_count("shape", &[usize::MAX, 2]).is_err());
        assert!(element_count("shape", &[3, 100_000, 100_000]).is_err());
        assert_eq!(element_count("shape", &[3, 4]), Ok(12));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
