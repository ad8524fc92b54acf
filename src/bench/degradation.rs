//! The degradations of the photo tables (`bench --photo`): each one's operator, σ_y and noise,
//! its measurement of a held-out truth and its classical baseline.

use crate::error::{Error, Result};
use crate::metrics::psnr;
use crate::noise_model::NoiseModel;
use crate::operators::{Blur, Clip, Downsample, Grayscale, Identity, Jpeg, Mask, Operator};
use crate::photo::{self, Picture};
use crate::priors::Denoiser;
use crate::problem::Problem;
use crate::tensor;
use burn::tensor::{Device, Tensor};
use std::sync::Arc;

/// One degradation of the table: its operator, σ_y and classical baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Degradation {
    SuperResolution2,
    SuperResolution4,
    Scratches,
    Deblur,
    Denoise,
    Colourise,
    Jpeg10,
    Jpeg20,
    Clip,
    Poisson20,
}

impl Degradation {
    pub const ALL: [Degradation; 6] = [
        Degradation::SuperResolution2,
        Degradation::SuperResolution4,
        Degradation::Scratches,
        Degradation::Deblur,
        Degradation::Denoise,
        Degradation::Colourise,
    ];

    /// The measurements beyond linear-Gaussian (run when `--only` names them).
    pub const NONLINEAR: [Degradation; 4] = [
        Degradation::Jpeg10,
        Degradation::Jpeg20,
        Degradation::Clip,
        Degradation::Poisson20,
    ];

    /// The name `--only` takes.
    pub fn key(self) -> &'static str {
        match self {
            Degradation::SuperResolution2 => "sr2",
            Degradation::SuperResolution4 => "sr4",
            Degradation::Scratches => "scratches",
            Degradation::Deblur => "deblur",
            Degradation::Denoise => "denoise",
            Degradation::Colourise => "colourise",
            Degradation::Jpeg10 => "jpeg10",
            Degradation::Jpeg20 => "jpeg20",
            Degradation::Clip => "clip",
            Degradation::Poisson20 => "poisson20",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Degradation::SuperResolution2 => "2x super-resolution, σ_y 0.02",
            Degradation::SuperResolution4 => "4x super-resolution, σ_y 0.02",
            Degradation::Scratches => "scratches and blots (10%), σ_y 0.02",
            Degradation::Deblur => "Gaussian blur σ 2, σ_y 0.02",
            Degradation::Denoise => "denoising, σ_y 0.1",
            Degradation::Colourise => "colourisation, σ_y 0.02",
            Degradation::Jpeg10 => "JPEG at quality 10, noise_sigma 0",
            Degradation::Jpeg20 => "JPEG at quality 20, noise_sigma 0",
            Degradation::Clip => "over-exposure (Clip gain 2), σ_y 0.02",
            Degradation::Poisson20 => "photon noise, peak 20, no read noise",
        }
    }

    pub fn sigma_y(self) -> f64 {
        match self {
            Degradation::Denoise => 0.1,
            Degradation::Jpeg10 | Degradation::Jpeg20 | Degradation::Poisson20 => 0.0,
            _ => 0.02,
        }
    }

    pub fn noise(self) -> NoiseModel {
        match self {
            Degradation::Poisson20 => NoiseModel::Poisson { peak: 20.0 },
            _ => NoiseModel::Gaussian,
        }
    }

    /// y of the truth x (seed 1), and the problem it poses with `prior`.
    pub fn measure(
        self,
        prior: Arc<dyn Denoiser>,
        op: Arc<dyn Operator>,
        x: Tensor<4>,
        device: &Device,
    ) -> Result<(Vec<f32>, Problem)> {
        let noise = (self.noise(), self.sigma_y());
        let y = crate::recipe::simulate_measurement(op.as_ref(), x, noise, 1)?;
        let yv = tensor::to_vec(&y)?;
        Ok((
            yv,
            Problem::with_noise(prior, op, y, noise, device.clone())?,
        ))
    }

    pub fn operator(self, shape: [usize; 3]) -> Result<Box<dyn Operator>> {
        let device = burn::tensor::Device::flex();
        let [_, h, w] = shape;
        Ok(match self {
            Degradation::SuperResolution2 => Box::new(Downsample::new(shape, 2)?),
            Degradation::SuperResolution4 => Box::new(Downsample::new(shape, 4)?),
            Degradation::Scratches => Box::new(Mask::from_array(
                shape,
                &[h, w],
                photo::scratches(h, w, 0.1, 7),
                &device,
            )?),
            Degradation::Deblur => Box::new(Blur::new(shape, 2.0, &device)?),
            Degradation::Denoise => Box::new(Identity::new(shape)),
            Degradation::Colourise => Box::new(Grayscale::new(shape)?),
            Degradation::Jpeg10 => Box::new(Jpeg::new(shape, 10, &device)?),
            Degradation::Jpeg20 => Box::new(Jpeg::new(shape, 20, &device)?),
            Degradation::Clip => Box::new(Clip::new(shape, 2.0)?),
            Degradation::Poisson20 => Box::new(Identity::new(shape)),
        })
    }

    /// The classical restoration from y, and its name.
    pub fn baseline(
        self,
        op: &dyn Operator,
        y: &[f32],
        truth: &Picture,
    ) -> Result<(Vec<f32>, String)> {
        let shape = truth.shape;
        let [c, h, w] = shape;
        Ok(match self {
            Degradation::SuperResolution2 => {
                (photo::bicubic(y, [c, h / 2, w / 2], 2), "bicubic".into())
            }
            Degradation::SuperResolution4 => {
                (photo::bicubic(y, [c, h / 4, w / 4], 4), "bicubic".into())
            }
            Degradation::Scratches => {
                let mask = photo::scratches(h, w, 0.1, 7);
                (
                    photo::interpolate_holes(y, &mask, shape, 2.0)?,
                    "Gaussian interpolation (σ 2 px)".into(),
                )
            }
            Degradation::Deblur => {
                // λ picked with the truth: an upper bound for the baseline.
                let lambdas = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
                let best = photo::wiener(op, y, &lambdas)?
                    .into_iter()
                    .zip(lambdas)
                    .max_by(|a, b| psnr(&a.0, &truth.data).total_cmp(&psnr(&b.0, &truth.data)))
                    .ok_or_else(|| Error::invalid("Wiener", "no λ"))?;
                (best.0, format!("Wiener (best λ {})", best.1))
            }
            Degradation::Denoise => (y.to_vec(), "y".into()),
            Degradation::Colourise => {
                let grey: Vec<f32> = (0..c * h * w).map(|i| y[i % (h * w)]).collect();
                (grey, "grey y".into())
            }
            Degradation::Jpeg10 | Degradation::Jpeg20 => (y.to_vec(), "the decoded JPEG".into()),
            Degradation::Clip => (y.to_vec(), "y".into()),
            Degradation::Poisson20 => {
                let (best, s) = best_gaussian_filter(y, truth, |v| v.to_vec(), |v| v)?;
                (best, format!("Gaussian filter (best σ {s} px)"))
            }
        })
    }

    /// Further classical answers worth a line under the table (Poisson: Anscombe's transform,
    /// the best Gaussian filter there, and its unbiased inverse).
    pub fn extra_baselines(self, y: &[f32], truth: &Picture) -> Result<Vec<(Vec<f32>, String)>> {
        let Degradation::Poisson20 = self else {
            return Ok(vec![]);
        };
        let peak = 20.0f32;
        let forward = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .map(|y| 2.0 * (peak * (y + 1.0) / 2.0 + 0.375).max(0.0).sqrt())
                .collect()
        };
        // Mäkitalo and Foi's closed-form approximation of the exact unbiased inverse.
        let inverse = |a: f32| {
            let a = a.max(1e-3);
            let k = 0.25 * a * a + 0.25 * 1.5f32.sqrt() / a - 1.375 / (a * a)
                + 0.625 * 1.5f32.sqrt() / (a * a * a)
                - 0.125;
            2.0 * k.max(0.0) / peak - 1.0
        };
        let (best, s) = best_gaussian_filter(y, truth, forward, inverse)?;
        Ok(vec![(
            best,
            format!("Anscombe + Gaussian filter (best σ {s} px)"),
        )])
    }
}

/// The Gaussian filter of `to(y)` whose `back` is nearest the truth (σ picked with the truth:
/// an upper bound for the baseline), and that σ.
fn best_gaussian_filter(
    y: &[f32],
    truth: &Picture,
    to: impl Fn(&[f32]) -> Vec<f32>,
    back: impl Fn(f32) -> f32,
) -> Result<(Vec<f32>, f64)> {
    let device = Device::flex();
    let [c, h, w] = truth.shape;
    let t = to(y);
    let mut best: Option<(f64, Vec<f32>, f64)> = None;
    for s in [0.5, 0.75, 1.0, 1.5, 2.0, 3.0] {
        let blur = Blur::new(truth.shape, s, &device)?;
        let out = blur.forward(tensor::from_vec(t.clone(), [1, c, h, w], &device));
        let v: Vec<f32> = tensor::to_vec(&out)?.into_iter().map(&back).collect();
        let p = psnr(&v, &truth.data);
        if best.as_ref().is_none_or(|b| p > b.0) {
            best = Some((p, v, s));
        }
    }
    best.map(|(_, v, s)| (v, s))
        .ok_or_else(|| Error::invalid("Gaussian filter", "no σ"))
}
