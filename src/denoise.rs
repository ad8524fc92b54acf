//! `posterior-lab denoise`: D(x, σ) of any model (shipped, trained or imported) for a float32
//! [B, C, H, W] batch in this program's [-1, 1] convention; a consistency model gives its
//! f(x, σ). Plain denoising at a known σ for users, and the interface outside tests drive.

use crate::error::{Error, Result};
use crate::{npy, tensor};
use burn::tensor::Device;
use std::path::Path;

/// Pictures per network call (bounds the memory of a large batch).
const CHUNK: usize = 8;

pub struct Request<'a> {
    pub model: &'a str,
    pub sigma: f64,
    pub class: Option<usize>,
    pub input: &'a Path,
    pub output: &'a Path,
}

/// Reads `input`, denoises it and writes `output`; returns a one-line summary.
pub fn run(req: &Request, device: &Device) -> Result<String> {
    if !(req.sigma.is_finite() && req.sigma > 0.0) {
        return Err(Error::invalid(
            "--sigma",
            format!("must be a positive number, got {}", req.sigma),
        ));
    }
    let arr = npy::read(req.input)?;
    let [b, c, h, w] = match arr.shape.as_slice() {
        [b, c, h, w] if *b > 0 && *c > 0 && *h > 0 && *w > 0 => [*b, *c, *h, *w],
        other => {
            return Err(Error::file(
                req.input,
                format!("expected a float32 batch [B, C, H, W], got shape {other:?}"),
            ));
        }
    };
    if arr.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::file(req.input, "holds NaN or infinite values"));
    }
    let path = crate::models::resolve(req.model, Path::new("."))?;
    let prior = crate::priors::load_model(&path, Some([c, h, w]), req.class, device)?;
    let (lo, hi) = prior.sigma_range();
    let note = if req.sigma < lo || req.sigma > hi {
        format!(
            " (σ {} is outside the model's range {lo:.4}–{hi:.1}: clamped to it)",
            req.sigma
        )
    } else {
        String::new()
    };
    let per = c * h * w;
    let mut out = Vec::with_capacity(arr.data.len());
    for start in (0..b).step_by(CHUNK) {
        let n = CHUNK.min(b - start);
        let x = tensor::from_vec(
            arr.data[start * per..(start + n) * per].to_vec(),
            [n, c, h, w],
            device,
        );
        let d = match prior.imported() {
            Some(p) => p.try_denoise(x, req.sigma)?,
            None => prior.denoise(x, req.sigma),
        };
        out.extend(tensor::to_vec(&d)?);
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            format!("model '{}'", req.model),
            "gave NaN or infinite values",
        ));
    }
    npy::write(req.output, &[b, c, h, w], &out)?;
    Ok(format!(
        "{}: D(x, σ = {}) of {b} picture(s) {c}×{h}×{w} written to {}{note}",
        prior.describe(),
        req.sigma,
        req.output.display()
    ))
}
