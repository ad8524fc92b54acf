//! What the user has chosen in the left panel (persisted between launches), and how it becomes a
//! recipe: the window runs exactly what `posterior-lab sample` would run from the exported RON.

use super::mask_editor::MaskEditor;
use crate::error::{Error, Result};
use crate::operators::OperatorSpec;
use crate::priors::PriorSpec;
use crate::recipe::{MeasurementSpec, Recipe, TruthSpec};
use crate::samplers::SamplerSpec;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The degradation, as picked in the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    /// Denoising only (A = I).
    Denoise,
    /// Inpainting: a box, random pixels and/or brush strokes.
    Inpaint,
    Downsample,
    Blur,
    /// Lost colour (colour priors only).
    Grayscale,
}

impl OpKind {
    pub const ALL: [OpKind; 5] = [
        OpKind::Denoise,
        OpKind::Inpaint,
        OpKind::Downsample,
        OpKind::Blur,
        OpKind::Grayscale,
    ];
    pub fn label(self) -> &'static str {
        match self {
            OpKind::Denoise => "Denoise (A = I)",
            OpKind::Inpaint => "Inpaint (mask)",
            OpKind::Downsample => "Super-resolution",
            OpKind::Blur => "Deblur (Gaussian)",
            OpKind::Grayscale => "Colourise (grey y)",
        }
    }
}

/// Sampler presets: the tested defaults a user starts from (editable as RON).
pub const SAMPLER_PRESETS: [(&str, &str, &str); 11] = [
    (
        "Dps",
        "Dps(steps: 200, zeta: 0.3)",
        "Diffusion posterior sampling (Chung et al.): prior ODE step + ζ-normalised likelihood gradient through the denoiser. Fields: steps, zeta (step size, official-code form), sigma_min, sigma_max, rho.",
    ),
    (
        "Eps",
        "Eps(steps: 20)",
        "Exact posterior score (Mammadov, Kara et al.): the denoiser is fed the pivot μ* (zero-shot for networks; exact for mixtures). Fields: steps, mode (Auto|Exact|ZeroShot|FineTuned; Auto uses the fine-tuned EPS network beside the prior when it matches the operator and σ_y), solver (Heun|Euler|Ancestral), sigma_min, sigma_max, rho.",
    ),
    (
        "Almc",
        "Almc(steps: 400)",
        "Likelihood-first annealed Langevin (Parulekar et al.): Langevin on N(0,I)e^{-R}, then anneal the prior in. Fields: steps, warmup, t_max, tau, delta, kappa, precondition (Langevin in the metric (I + A^T A/σ_y^2)^-1: same targets, no data-term stiffness), final_denoise.",
    ),
    (
        "NoiseSpaceLangevin",
        "NoiseSpaceLangevin(steps: 100)",
        "Langevin in the noise z of a deterministic generator x = Φ(z) (Purohit et al.); Adam warm-up first. Fields: steps, warmup, warmup_lr, generator (Auto|Distilled|Ode; Auto uses the distilled one-step model beside the prior when there is one), generator_steps (ODE), step, drift (Paper|Code), clamp.",
    ),
    (
        "Ald",
        "Ald(steps: 100)",
        "Annealed Langevin with the likelihood gradient (Jalal et al.). Fields: steps, inner, eps, sigma_min, sigma_max, final_denoise.",
    ),
    (
        "Daps",
        "Daps(steps: 50)",
        "Decoupled annealing posterior sampling (Zhang et al.). Fields: steps, ode_steps, langevin_steps, lr, sigma_min, sigma_max, rho.",
    ),
    (
        "DiffPir",
        "DiffPir(steps: 50)",
        "Plug-and-play restoration (Zhu et al.): proximal data step between denoiser calls. Fields: steps, lambda, zeta, sigma_min, sigma_max, rho.",
    ),
    (
        "PiGdm",
        "PiGdm(steps: 50)",
        "Pseudoinverse-guided diffusion (Song et al.). Fields: steps, eta, weight, sigma_min, sigma_max, rho.",
    ),
    (
        "Ddrm",
        "Ddrm(steps: 50)",
        "Denoising diffusion restoration (Kawar et al.) in the operator's SVD basis. Fields: steps, eta, eta_b, sigma_min, sigma_max, rho.",
    ),
    (
        "Prior",
        "Prior(steps: 40)",
        "Unconditional samples from the prior (ignores y): what the prior believes. Fields: steps, solver (Heun|Euler|Ancestral), distilled (true: the distilled one-step consistency model, one call per step; steps: 1 for one-step samples).",
    ),
    (
        "Exact",
        "Exact",
        "Exact posterior samples: Gaussian-mixture priors only.",
    ),
];

/// Parses the sampler field of the panel (the recipe's syntax).
pub fn parse_sampler(text: &str) -> std::result::Result<SamplerSpec, String> {
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .from_str(text.trim())
        .map_err(|e| e.to_string())
}

/// The panel's choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Setup {
    /// Prior by name (see `super::catalog`).
    pub prior: String,
    /// Gallery image name, or a file path the user opened.
    pub image: String,
    pub op: OpKind,
    /// Inpainting base pattern: box side as a fraction of the image.
    pub box_fraction: f32,
    /// Inpainting base pattern: fraction of pixels kept at random (1 = none removed).
    pub keep_fraction: f32,
    pub use_box: bool,
    pub use_random: bool,
    pub factor: usize,
    pub blur_sigma: f64,
    pub noise_sigma: f64,
    pub sampler: String,
    pub chains: usize,
    pub seed: u64,
    /// The picture is a real degraded observation: y = A(picture) exactly, no noise added and
    /// no truth (PSNR is not shown).
    pub image_is_y: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            prior: "fashion-mnist".into(),
            image: "fashion-sneaker".into(),
            op: OpKind::Inpaint,
            box_fraction: 0.4,
            keep_fraction: 0.5,
            use_box: true,
            use_random: false,
            factor: 2,
            blur_sigma: 1.5,
            noise_sigma: 0.05,
            sampler: "Dps(steps: 200, zeta: 0.3)".into(),
            chains: 16,
            seed: 1,
            image_is_y: false,
        }
    }
}

impl Setup {
    /// The operator of the recipe; the mask (if any) is written as `mask.npy` in `dir`.
    pub fn operator(
        &self,
        shape: [usize; 3],
        mask: &MaskEditor,
        dir: &Path,
    ) -> Result<OperatorSpec> {
        Ok(match self.op {
            OpKind::Denoise => OperatorSpec::Identity,
            OpKind::Inpaint => {
                let [_, h, w] = shape;
                let seen = mask.raster(self, h, w);
                let data: Vec<f32> = seen.iter().map(|&s| if s { 1.0 } else { 0.0 }).collect();
                crate::npy::write(&dir.join("mask.npy"), &[h, w], &data)?;
                OperatorSpec::Mask("mask.npy".into())
            }
            OpKind::Downsample => {
                let [_, h, w] = shape;
                if self.factor < 2 || h % self.factor != 0 || w % self.factor != 0 {
                    return Err(Error::invalid(
                        "super-resolution factor",
                        format!("{} does not divide the image size {h}×{w}", self.factor),
                    ));
                }
                OperatorSpec::Downsample(self.factor)
            }
            OpKind::Blur => OperatorSpec::Blur {
                sigma: self.blur_sigma,
            },
            OpKind::Grayscale => {
                if shape[0] != 3 {
                    return Err(Error::invalid(
                        "colourise",
                        "needs a colour prior; this one is grey",
                    ));
                }
                OperatorSpec::Grayscale
            }
        })
    }

    /// A complete recipe for the current choices; inputs are written into `dir` (its base).
    pub fn recipe(
        &self,
        prior: PriorSpec,
        shape: [usize; 3],
        truth: &[f32],
        mask: &MaskEditor,
        dir: &Path,
    ) -> Result<Recipe> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
        let sampler = parse_sampler(&self.sampler)
            .map_err(|e| Error::invalid("sampler", format!("not a valid sampler: {e}")))?;
        let operator = self.operator(shape, mask, dir)?;
        let measurement = if self.image_is_y {
            // The picture already is the observation: y = A(picture), in the operator's shape.
            let device = burn::tensor::Device::flex();
            let op = crate::operators::build(&operator, shape, dir, &device)?;
            let [c, h, w] = shape;
            let x = crate::tensor::from_vec(truth.to_vec(), [1, c, h, w], &device);
            let y = crate::tensor::to_vec(&op.forward(x))?;
            crate::npy::write(&dir.join("y.npy"), &op.output_npy_shape(), &y)?;
            MeasurementSpec::Npy("y.npy".into())
        } else {
            crate::npy::write(&dir.join("truth.npy"), &shape, truth)?;
            MeasurementSpec::Simulate {
                truth: TruthSpec::Npy("truth.npy".into()),
                resize: false,
            }
        };
        Ok(Recipe {
            prior,
            shape: (shape[0], shape[1], shape[2]),
            operator,
            measurement,
            noise_sigma: self.noise_sigma,
            sampler,
            chains: self.chains.clamp(1, 4096),
            seed: self.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_degraded_picture_becomes_y_without_truth() {
        let dir = std::env::temp_dir().join(format!("pl-setup-y-{}", std::process::id()));
        let setup = Setup {
            image_is_y: true,
            op: OpKind::Downsample,
            factor: 2,
            ..Setup::default()
        };
        let picture: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
        let r = setup
            .recipe(
                PriorSpec::Gmm("unused.ron".into()),
                [1, 4, 4],
                &picture,
                &MaskEditor::new(),
                &dir,
            )
            .unwrap();
        assert_eq!(r.measurement, MeasurementSpec::Npy("y.npy".into()));
        let y = crate::npy::read(&dir.join("y.npy")).unwrap();
        assert_eq!(y.shape, vec![1, 2, 2]);
        // Block means of the picture, exactly (no noise added).
        let expect = (0.0 + 1.0 + 4.0 + 5.0) / 4.0 / 16.0;
        assert!((y.data[0] - expect).abs() < 1e-6, "{:?}", y.data);
        assert!(!dir.join("truth.npy").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_preset_parses() {
        for (name, text, _) in SAMPLER_PRESETS {
            let spec = parse_sampler(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(spec.name(), name);
        }
    }
}
