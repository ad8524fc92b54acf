//! Images in and out: photos to [-1, 1] tensors in C order, and PNG renderings of results.

use crate::error::{Error, Result};
use image::{ImageBuffer, Rgb, imageops::FilterType};
use std::path::Path;

/// Loads an image as [C, H, W] values in [-1, 1]. C = 1 converts to grey, C = 3 to RGB.
/// A size different from (H, W) is an error unless `resize` is set.
pub fn load(path: &Path, shape: [usize; 3], resize: bool) -> Result<Vec<f32>> {
    let [c, h, w] = shape;
    if c != 1 && c != 3 {
        return Err(Error::file(
            path,
            format!("an image gives 1 or 3 channels, but the shape asks for {c}"),
        ));
    }
    let bytes = crate::files::read(path, crate::files::MAX_DATA_BYTES).map_err(|e| match e {
        Error::File { message, .. } => Error::file(path, format!("cannot read image: {message}")),
        other => other,
    })?;
    let img = decode(&bytes).map_err(|e| Error::file(path, e))?;
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let img = if (ih, iw) != (h, w) {
        if !resize {
            return Err(Error::file(
                path,
                format!(
                    "image is {iw}x{ih} (WxH) but the recipe's shape is {w}x{h}; add `resize: true` to Simulate(...) to resize it"
                ),
            ));
        }
        img.resize_exact(w as u32, h as u32, FilterType::Lanczos3)
    } else {
        img
    };
    let to_unit = |v: u8| f32::from(v) / 127.5 - 1.0;
    Ok(if c == 1 {
        img.to_luma8().pixels().map(|p| to_unit(p.0[0])).collect()
    } else {
        let rgb = img.to_rgb8();
        let mut out = vec![0.0; 3 * h * w];
        for (x, y, p) in rgb.enumerate_pixels() {
            for ch in 0..3 {
                out[ch * h * w + y as usize * w + x as usize] = to_unit(p.0[ch]);
            }
        }
        out
    })
}

fn to_u8(v: f32) -> u8 {
    (((v + 1.0) * 127.5).round()).clamp(0.0, 255.0) as u8
}

/// Renders [C, H, W] data in [-1, 1] (C = 1 or 3) as an RGB image buffer.
pub fn to_rgb(data: &[f32], shape: [usize; 3]) -> ImageBuffer<Rgb<u8>, Vec<u8>> {
    let [c, h, w] = shape;
    ImageBuffer::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        if c >= 3 {
            Rgb([
                to_u8(data[i]),
                to_u8(data[h * w + i]),
                to_u8(data[2 * h * w + i]),
            ])
        } else {
            let v = to_u8(data[i]);
            Rgb([v, v, v])
        }
    })
}

/// The viridis colormap at t in [0, 1] (piecewise-linear through 9 anchor colours).
pub fn viridis(t: f32) -> [u8; 3] {
    const ANCHORS: [[f32; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 44.0, 122.0],
        [59.0, 81.0, 139.0],
        [44.0, 113.0, 142.0],
        [33.0, 144.0, 141.0],
        [39.0, 173.0, 129.0],
        [92.0, 200.0, 99.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    piecewise(&ANCHORS, if t.is_finite() { t } else { 0.0 })
}

/// A diverging blue–white–red colormap at t in [-1, 1] (ColorBrewer RdBu anchors): signed
/// quantities such as principal directions.
pub fn diverging(t: f32) -> [u8; 3] {
    const ANCHORS: [[f32; 3]; 5] = [
        [33.0, 102.0, 172.0],
        [146.0, 197.0, 222.0],
        [247.0, 247.0, 247.0],
        [244.0, 165.0, 130.0],
        [178.0, 24.0, 43.0],
    ];
    let t = if t.is_finite() { t } else { 0.0 };
    piecewise(&ANCHORS, (t.clamp(-1.0, 1.0) + 1.0) / 2.0)
}

/// Linear interpolation through equally spaced anchor colours at u in [0, 1].
fn piecewise(anchors: &[[f32; 3]], u: f32) -> [u8; 3] {
    let segments = anchors.len() - 1;
    let x = u.clamp(0.0, 1.0) * segments as f32;
    let i = (x.floor() as usize).min(segments - 1);
    let f = x - i as f32;
    let mut out = [0u8; 3];
    for k in 0..3 {
        out[k] = (anchors[i][k] * (1.0 - f) + anchors[i + 1][k] * f).round() as u8;
    }
    out
}

/// Per-pixel variance [C, H, W] as a colormap image: averaged over channels, scaled to its max.
/// Returns the image and the value that maps to the top of the colormap.
pub fn variance_map(var: &[f32], shape: [usize; 3]) -> (ImageBuffer<Rgb<u8>, Vec<u8>>, f32) {
    let [c, h, w] = shape;
    let avg: Vec<f32> = (0..h * w)
        .map(|i| (0..c).map(|ch| var[ch * h * w + i]).sum::<f32>() / c as f32)
        .collect();
    let top = avg.iter().cloned().fold(0.0f32, f32::max).max(1e-12);
    let img = ImageBuffer::from_fn(w as u32, h as u32, |x, y| {
        Rgb(viridis(avg[y as usize * w + x as usize] / top))
    });
    (img, top)
}

/// Up to `max` chains of [B, C, H, W] data tiled in a near-square grid with 1-pixel gaps.
pub fn grid(
    samples: &[f32],
    chains: usize,
    shape: [usize; 3],
    max: usize,
) -> ImageBuffer<Rgb<u8>, Vec<u8>> {
    let [c, h, w] = shape;
    let d = c * h * w;
    let n = chains.min(max).max(1);
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let mut img = ImageBuffer::from_pixel(
        (cols * (w + 1) - 1) as u32,
        (rows * (h + 1) - 1) as u32,
        Rgb([255u8, 255, 255]),
    );
    for k in 0..n.min(chains) {
        let tile = to_rgb(&samples[k * d..(k + 1) * d], shape);
        let (ox, oy) = ((k % cols) * (w + 1), (k / cols) * (h + 1));
        for (x, y, p) in tile.enumerate_pixels() {
            img.put_pixel(ox as u32 + x, oy as u32 + y, *p);
        }
    }
    img
}

/// Saves an image buffer as PNG, reporting failures against the path.
pub fn save_png(img: &ImageBuffer<Rgb<u8>, Vec<u8>>, path: &Path) -> Result<()> {
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::file(path, format!("cannot write PNG: {e}")))
}

/// Largest picture side accepted when decoding (a 12-megapixel photo fits; a header claiming a
/// gigapixel does not get its memory).
pub const MAX_IMAGE_SIDE: u32 = 16384;

/// Decodes a PNG or JPEG with the decoder's limits set (side and memory), so a hostile header
/// is an error, not an abort.
pub fn decode(bytes: &[u8]) -> std::result::Result<image::DynamicImage, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| format!("cannot read image: {e}"))
}
