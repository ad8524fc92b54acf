//! Photos at their own size: held-out test pictures, scratch-and-blot masks of any size, and
//! the classical restorations a posterior mean is judged against (bicubic upscaling,
//! normalised-convolution hole filling, Wiener deconvolution).

use crate::error::{Error, Result};
use crate::operators::{Blur, Operator};
use crate::tensor;
use burn::tensor::Device;
use image::{ImageBuffer, Luma};
use rand::RngExt;

/// A picture as [C, H, W] f32 in [-1, 1].
#[derive(Debug, Clone)]
pub struct Picture {
    pub shape: [usize; 3],
    pub data: Vec<f32>,
}

/// Decodes an image file and fits it to a `side`×`side` colour square: the centred largest
/// square, resized with a Catmull-Rom filter (the held-out crops of the photo benchmark).
pub fn square_crop(bytes: &[u8], name: &str, side: usize) -> Result<Picture> {
    let img = crate::image_io::decode(bytes).map_err(|e| Error::file(name, e))?;
    let (w, h) = (img.width(), img.height());
    let s = w.min(h);
    let cropped = img.crop_imm((w - s) / 2, (h - s) / 2, s, s).to_rgb8();
    let resized = image::imageops::resize(
        &cropped,
        side as u32,
        side as u32,
        image::imageops::FilterType::CatmullRom,
    );
    let mut data = Vec::with_capacity(3 * side * side);
    for ch in 0..3 {
        data.extend(resized.pixels().map(|p| f32::from(p.0[ch]) / 127.5 - 1.0));
    }
    Ok(Picture {
        shape: [3, side, side],
        data,
    })
}

/// Decodes a photo into `channels` (1 grey, 3 colour) at its own size, shrunk only when its
/// longer side exceeds `max_side`, and cropped at the bottom/right to multiples of `multiple`.
/// Returns the picture and a note of what was done (empty when nothing).
pub fn fit(
    bytes: &[u8],
    path: &std::path::Path,
    channels: usize,
    max_side: usize,
    multiple: usize,
) -> Result<(Picture, String)> {
    let img = crate::image_io::decode(bytes).map_err(|e| Error::file(path, e))?;
    let (w0, h0) = (img.width() as usize, img.height() as usize);
    let mut notes = vec![];
    let img = if w0.max(h0) > max_side {
        let s = max_side as f64 / w0.max(h0) as f64;
        let (w, h) = (
            ((w0 as f64 * s) as u32).max(1),
            ((h0 as f64 * s) as u32).max(1),
        );
        notes.push(format!(
            "shrunk from {w0}×{h0} to {w}×{h} (--max-side {max_side})"
        ));
        img.resize_exact(w, h, image::imageops::FilterType::CatmullRom)
    } else {
        img
    };
    let m = multiple.max(1);
    let (w1, h1) = (img.width() as usize, img.height() as usize);
    let (w, h) = (w1 / m * m, h1 / m * m);
    if w == 0 || h == 0 {
        return Err(Error::file(path, format!("{w1}×{h1} is too small")));
    }
    if (w, h) != (w1, h1) {
        notes.push(format!("cropped to {w}×{h} (a multiple of {m})"));
    }
    let img = img.crop_imm(0, 0, w as u32, h as u32);
    let data: Vec<f32> = match channels {
        1 => img
            .to_luma8()
            .pixels()
            .map(|p| f32::from(p.0[0]) / 127.5 - 1.0)
            .collect(),
        3 => {
            let rgb = img.to_rgb8();
            (0..3)
                .flat_map(|ch| rgb.pixels().map(move |p| f32::from(p.0[ch]) / 127.5 - 1.0))
                .collect()
        }
        c => {
            return Err(Error::invalid(
                "batch",
                format!("pictures have 1 or 3 channels; the recipe's shape has {c}"),
            ));
        }
    };
    Ok((
        Picture {
            shape: [channels, h, w],
            data,
        },
        notes.join("; "),
    ))
}

/// A mask (1 seen, 0 missing) of thin scratches and round blots covering about `fraction` of
/// an H×W picture: lines 3 px wide across the picture and blots of radius 2–5% of the shorter
/// side, drawn until the fraction is reached. Deterministic in `seed`.
pub fn scratches(h: usize, w: usize, fraction: f64, seed: u64) -> Vec<f32> {
    let mut mask = vec![1.0f32; h * w];
    let mut rng = tensor::rng(seed ^ 0x5c2a_7c4e);
    let side = h.min(w) as f64;
    let target = (fraction.clamp(0.0, 0.9) * (h * w) as f64) as usize;
    let mut missing = 0usize;
    let mut k = 0usize;
    while missing < target && k < 10_000 {
        k += 1;
        let (hf, wf) = (h as f64, w as f64);
        if k.is_multiple_of(3) {
            // A blot.
            let r = side * rng.random_range(0.02..0.05);
            let (x, y) = (rng.random_range(0.0..wf), rng.random_range(0.0..hf));
            missing += hole(&mut mask, [h, w], x, y, r);
        } else {
            // A scratch: a straight line from one random point to another, 1.5 px radius.
            let (x0, y0) = (rng.random_range(0.0..wf), rng.random_range(0.0..hf));
            let (x1, y1) = (rng.random_range(0.0..wf), rng.random_range(0.0..hf));
            let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt().max(1.0);
            let n = (len * 2.0) as usize + 1;
            for i in 0..=n {
                let t = i as f64 / n as f64;
                missing += hole(
                    &mut mask,
                    [h, w],
                    x0 + t * (x1 - x0),
                    y0 + t * (y1 - y0),
                    1.5,
                );
                if missing >= target {
                    break;
                }
            }
        }
    }
    mask
}

/// Clears a disc of radius r at (x, y); returns how many pixels it newly cleared.
fn hole(mask: &mut [f32], [h, w]: [usize; 2], x: f64, y: f64, r: f64) -> usize {
    let lo = |v: f64| (v - r).floor().max(0.0) as usize;
    let hi = |v: f64, n: usize| ((v + r).ceil().max(0.0) as usize).min(n - 1);
    let mut cleared = 0;
    for yy in lo(y)..=hi(y, h) {
        for xx in lo(x)..=hi(x, w) {
            let (dx, dy) = (xx as f64 - x, yy as f64 - y);
            if dx * dx + dy * dy <= r * r && mask[yy * w + xx] != 0.0 {
                mask[yy * w + xx] = 0.0;
                cleared += 1;
            }
        }
    }
    cleared
}

/// Bicubic (Catmull-Rom) upscaling of y ([C, h, w]) by `factor`, clipped to the data range
/// as an 8-bit picture would be.
pub fn bicubic(y: &[f32], [c, h, w]: [usize; 3], factor: usize) -> Vec<f32> {
    let (big_h, big_w) = (h * factor, w * factor);
    let mut out = Vec::with_capacity(c * big_h * big_w);
    for ch in 0..c {
        // The image crate's float pixels live in [0, 1].
        let unit: Vec<f32> = y[ch * h * w..][..h * w]
            .iter()
            .map(|v| (v + 1.0) * 0.5)
            .collect();
        let plane: ImageBuffer<Luma<f32>, Vec<f32>> =
            ImageBuffer::from_raw(w as u32, h as u32, unit)
                .unwrap_or_else(|| ImageBuffer::new(w as u32, h as u32));
        let big = image::imageops::resize(
            &plane,
            big_w as u32,
            big_h as u32,
            image::imageops::FilterType::CatmullRom,
        );
        out.extend(big.into_raw().into_iter().map(|v| v * 2.0 - 1.0));
    }
    out
}

/// Fills the holes of y ([C, H, W], mask [H, W], 1 seen) by normalised convolution: a
/// Gaussian-weighted mean of the seen pixels around each hole pixel; seen pixels are kept.
/// Deep inside a hole much wider than σ no seen pixel weighs and the fill goes to 0 (grey).
pub fn interpolate_holes(
    y: &[f32],
    mask: &[f32],
    shape: [usize; 3],
    sigma: f64,
) -> Result<Vec<f32>> {
    fill(y, mask, shape, sigma, None)
}

/// As [`interpolate_holes`] at σ 2 px, and holes of any width filled from the pyramid of
/// [`push_pull`] where the seen pixels within a few σ weigh little: a blot's colour continues
/// from its rim to its centre (the classical answer a warm start begins from).
pub fn fill_holes(y: &[f32], mask: &[f32], [c, h, w]: [usize; 3]) -> Result<Vec<f32>> {
    let hw = h * w;
    let coarse: Vec<f32> = (0..c)
        .flat_map(|ch| push_pull(&y[ch * hw..][..hw], mask, h, w))
        .collect();
    fill(y, mask, [c, h, w], 2.0, Some(&coarse))
}

/// Normalised convolution, with `coarse` weighing 1e-3 beside the seen pixels' weight (∈ [0, 1]),
/// so it decides only where no seen pixel is near.
fn fill(
    y: &[f32],
    mask: &[f32],
    [c, h, w]: [usize; 3],
    sigma: f64,
    coarse: Option<&[f32]>,
) -> Result<Vec<f32>> {
    const COARSE: f32 = 1e-3;
    let device = Device::flex();
    let blur = Blur::new([c, h, w], sigma, &device)?;
    let hw = h * w;
    let seen: Vec<f32> = (0..y.len()).map(|i| y[i] * mask[i % hw]).collect();
    let weight: Vec<f32> = (0..y.len()).map(|i| mask[i % hw]).collect();
    let smooth =
        |x: Vec<f32>| tensor::to_vec(&blur.forward(tensor::from_vec(x, [1, c, h, w], &device)));
    let (num, den) = (smooth(seen)?, smooth(weight)?);
    Ok((0..y.len())
        .map(|i| match coarse {
            _ if mask[i % hw] != 0.0 => y[i],
            Some(cv) => (num[i] + COARSE * cv[i]) / (den[i] + COARSE),
            None => num[i] / den[i].max(1e-6),
        })
        .collect())
}

/// Push-pull interpolation of one plane (Gortler et al. 1996): halve the picture repeatedly,
/// each pixel of a level holding the mean of its block's seen values and the fraction seen; then
/// from the coarsest level down, a pixel keeps its block's own mean for the fraction seen and
/// takes the level above (bilinear) for the rest. Seen pixels are kept; O(H·W).
fn push_pull(v: &[f32], mask: &[f32], h: usize, w: usize) -> Vec<f32> {
    if v.is_empty() {
        return vec![];
    }
    // (fraction-weighted mean, fraction seen, height, width) per level.
    let first: Vec<f32> = v.iter().zip(mask).map(|(a, m)| a * m).collect();
    let mut levels = vec![(first, mask.to_vec(), h, w)];
    loop {
        let (p, f, lh, lw) = &levels[levels.len() - 1];
        let (lh, lw) = (*lh, *lw);
        if lh <= 1 && lw <= 1 {
            break;
        }
        let (nh, nw) = (lh.div_ceil(2), lw.div_ceil(2));
        let (mut np, mut nf, mut n) = (vec![0.0; nh * nw], vec![0.0; nh * nw], vec![0.0; nh * nw]);
        for i in 0..lh {
            for j in 0..lw {
                let k = (i / 2) * nw + j / 2;
                np[k] += p[i * lw + j];
                nf[k] += f[i * lw + j];
                n[k] += 1.0;
            }
        }
        for k in 0..nh * nw {
            np[k] /= n[k];
            nf[k] /= n[k];
        }
        levels.push((np, nf, nh, nw));
    }
    let (p, f, _, _) = &levels[levels.len() - 1];
    // No seen pixel at all: grey.
    let mut up: Vec<f32> = vec![if f[0] > 0.0 { p[0] / f[0] } else { 0.0 }];
    let (mut uh, mut uw) = (1, 1);
    for (p, f, lh, lw) in levels.iter().rev().skip(1) {
        let (lh, lw) = (*lh, *lw);
        let mut out = vec![0.0; lh * lw];
        for i in 0..lh {
            // The centre of pixel i in the coarser level's pixel coordinates.
            let ci = ((i as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (uh - 1) as f32);
            let (i0, ti) = (ci.floor() as usize, ci.fract());
            let i1 = (i0 + 1).min(uh - 1);
            for j in 0..lw {
                let cj = ((j as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (uw - 1) as f32);
                let (j0, tj) = (cj.floor() as usize, cj.fract());
                let j1 = (j0 + 1).min(uw - 1);
                let at = |a: usize, b: usize| up[a * uw + b];
                let u = (1.0 - ti) * ((1.0 - tj) * at(i0, j0) + tj * at(i0, j1))
                    + ti * ((1.0 - tj) * at(i1, j0) + tj * at(i1, j1));
                let k = i * lw + j;
                out[k] = p[k] + (1.0 - f[k]) * u;
            }
        }
        up = out;
        (uh, uw) = (lh, lw);
    }
    up
}

/// A classical restoration shown while the chains start (a slow photo run's first answer):
/// y for denoising and colourisation (grey in every channel), Gaussian interpolation of the
/// holes, bicubic upscaling, Wiener deconvolution (λ 0.01). `y_view` and `seen` are the
/// measurement in x's space ([`crate::operators::display_measurement`]). None when there is
/// no classical answer (a general matrix).
pub fn first_answer(
    op: &dyn Operator,
    y: &[f32],
    y_view: &[f32],
    seen: &[bool],
) -> Result<Option<(Vec<f32>, &'static str)>> {
    use crate::operators::Task;
    let [c, h, w] = op.input_shape();
    Ok(Some(match op.task() {
        Task::Denoise => (y_view.to_vec(), "y"),
        Task::Colourise => (y_view.to_vec(), "the grey y"),
        Task::Inpaint => {
            // Per value (a mask may differ between channels): interpolate each channel alone.
            let mut out = Vec::with_capacity(c * h * w);
            for ch in 0..c {
                let plane = &y_view[ch * h * w..][..h * w];
                let mask: Vec<f32> = seen[ch * h * w..][..h * w]
                    .iter()
                    .map(|s| if *s { 1.0 } else { 0.0 })
                    .collect();
                out.extend(fill_holes(plane, &mask, [1, h, w])?);
            }
            (out, "Gaussian interpolation")
        }
        Task::SuperResolution => {
            let [yc, yh, yw] = op.output_shape();
            if yh == 0 || yw == 0 || h % yh != 0 || w % yw != 0 || h / yh != w / yw {
                return Ok(None);
            }
            (bicubic(y, [yc, yh, yw], h / yh), "bicubic")
        }
        Task::Deblur => (
            wiener(op, y, &[1e-2])?.pop().unwrap_or_else(|| y.to_vec()),
            "Wiener deconvolution",
        ),
        Task::Dejpeg => (y_view.to_vec(), "the decoded JPEG"),
        Task::Declip => (y_view.to_vec(), "y"),
        Task::PhaseRetrieval | Task::Other => return Ok(None),
    }))
}

/// Wiener (Tikhonov) deconvolution: x = ȳ + (AᵀA + λI)⁻¹ Aᵀ(y − ȳ), ȳ the mean of y per
/// channel (the blur keeps constants), for each λ given; returns every estimate.
pub fn wiener(op: &dyn Operator, y: &[f32], lambdas: &[f64]) -> Result<Vec<Vec<f32>>> {
    let device = Device::flex();
    let [c, h, w] = op.output_shape();
    let hw = h * w;
    let means: Vec<f32> = (0..c)
        .map(|ch| y[ch * hw..][..hw].iter().sum::<f32>() / hw as f32)
        .collect();
    let centred: Vec<f32> = (0..y.len()).map(|i| y[i] - means[i / hw]).collect();
    let aty = op.adjoint(tensor::from_vec(centred, [1, c, h, w], &device));
    lambdas
        .iter()
        .map(|&l| {
            let x = tensor::to_vec(&op.solve_shifted(l, 1.0, aty.clone()))?;
            Ok(x.iter()
                .enumerate()
                .map(|(i, v)| v + means[i / hw])
                .collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Push-pull keeps the seen pixels and continues a smooth picture into a hole far wider
    /// than the Gaussian interpolation's σ, where that one falls to grey.
    #[test]
    fn a_wide_hole_is_filled_from_its_rim() {
        let (h, w) = (64, 96);
        let ramp: Vec<f32> = (0..h * w)
            .map(|k| 0.8 * (k % w) as f32 / w as f32 - 0.3)
            .collect();
        let mask: Vec<f32> = (0..h * w)
            .map(|k| {
                let (r, c) = ((k / w) as f32 - 32.0, (k % w) as f32 - 48.0);
                f32::from(r * r + c * c > 400.0)
            })
            .collect();
        let filled = fill_holes(&ramp, &mask, [1, h, w]).unwrap();
        let gauss = interpolate_holes(&ramp, &mask, [1, h, w], 2.0).unwrap();
        let centre = 32 * w + 48;
        assert!(
            gauss[centre].abs() < 1e-3,
            "σ 2 goes grey: {}",
            gauss[centre]
        );
        assert!(
            (filled[centre] - ramp[centre]).abs() < 0.05,
            "{}",
            filled[centre]
        );
        let worst = (0..h * w)
            .map(|k| (filled[k] - ramp[k]).abs())
            .fold(0.0, f32::max);
        assert!(worst < 0.1, "worst error in the hole {worst}");
        assert!((0..h * w).all(|k| mask[k] == 0.0 || filled[k] == ramp[k]));
        let constant = fill_holes(&vec![0.4; h * w], &mask, [1, h, w]).unwrap();
        assert!(constant.iter().all(|v| (v - 0.4).abs() < 1e-5));
    }

    #[test]
    fn scratches_cover_the_asked_fraction() {
        for (h, w) in [(64, 64), (256, 384), (512, 512)] {
            let m = scratches(h, w, 0.1, 3);
            let missing = m.iter().filter(|v| **v == 0.0).count() as f64 / (h * w) as f64;
            assert!((0.099..0.12).contains(&missing), "{h}x{w}: {missing}");
        }
        assert_eq!(scratches(32, 32, 0.1, 5), scratches(32, 32, 0.1, 5));
    }

    #[test]
    fn bicubic_keeps_a_constant_and_wiener_undoes_a_mild_blur() {
        let up = bicubic(&[-0.25; 2 * 4 * 6], [2, 4, 6], 2);
        assert_eq!(up.len(), 2 * 8 * 12);
        assert!(up.iter().all(|v| (v + 0.25).abs() < 1e-5));
        // A smooth ramp comes back close to the ramp at twice the size.
        let ramp: Vec<f32> = (0..64).map(|i| (i % 8) as f32 / 8.0 - 0.5).collect();
        let big = bicubic(&ramp, [1, 8, 8], 2);
        let truth: Vec<f32> = (0..256)
            .map(|i| ((i % 16) as f32 + 0.5) / 16.0 - 0.5 - 0.5 / 8.0)
            .collect();
        let err: f32 = big
            .iter()
            .zip(&truth)
            .skip(32)
            .take(192)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / 192.0;
        assert!(err < 0.02, "{err}");
        let device = Device::flex();
        let op = Blur::new([1, 24, 24], 1.0, &device).unwrap();
        let x: Vec<f32> = (0..576)
            .map(|i| ((i % 24) as f32 / 3.0).sin() * 0.5)
            .collect();
        let y = tensor::to_vec(&op.forward(tensor::from_vec(x.clone(), [1, 1, 24, 24], &device)))
            .unwrap();
        let est = wiener(&op, &y, &[1e-4]).unwrap().remove(0);
        let (py, pw) = (crate::metrics::psnr(&y, &x), crate::metrics::psnr(&est, &x));
        assert!(pw > py + 5.0, "Wiener {pw:.1} dB vs blurred {py:.1} dB");
    }
}
