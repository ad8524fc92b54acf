//! What the user has chosen in the left panel (persisted between launches), and how it becomes a
//! recipe: the window runs exactly what `posterior-lab sample` would run from the exported RON.

use super::mask_editor::{MaskEditor, MaskPattern};
use crate::error::{Error, Result};
use crate::noise_model::NoiseModel;
use crate::operators::{self, Mask, Operator, OperatorSpec};
use crate::priors::PriorSpec;
use crate::priors::network::EpsOperator;
use crate::recipe::{MeasurementSpec, Recipe, TruthSpec};
use crate::samplers;
use burn::tensor::{Device, Tensor};
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
    /// JPEG's blocks and ringing at a quality.
    Jpeg,
    /// Burnt-out highlights: y = clip(g·x, −1, 1).
    Clip,
    /// Only the Fourier magnitude of the picture.
    PhaseRetrieval,
}

impl OpKind {
    pub const ALL: [OpKind; 8] = [
        OpKind::Denoise,
        OpKind::Inpaint,
        OpKind::Downsample,
        OpKind::Blur,
        OpKind::Grayscale,
        OpKind::Jpeg,
        OpKind::Clip,
        OpKind::PhaseRetrieval,
    ];
    /// The restoration it asks for (what `Auto` and the time estimate read).
    pub fn task(self) -> operators::Task {
        use operators::Task;
        match self {
            OpKind::Denoise => Task::Denoise,
            OpKind::Inpaint => Task::Inpaint,
            OpKind::Downsample => Task::SuperResolution,
            OpKind::Blur => Task::Deblur,
            OpKind::Grayscale => Task::Colourise,
            OpKind::Jpeg => Task::Dejpeg,
            OpKind::Clip => Task::Declip,
            OpKind::PhaseRetrieval => Task::PhaseRetrieval,
        }
    }

    /// Whether A is linear (DDRM, ΠGDM, EPS and closed-form posteriors need it).
    pub fn is_linear(self) -> bool {
        !matches!(self, OpKind::Jpeg | OpKind::Clip | OpKind::PhaseRetrieval)
    }

    pub fn label(self) -> &'static str {
        match self {
            OpKind::Denoise => "Denoise (A = I)",
            OpKind::Inpaint => "Inpaint (mask)",
            OpKind::Downsample => "Super-resolution",
            OpKind::Blur => "Deblur (Gaussian)",
            OpKind::Grayscale => "Colourise (grey y)",
            OpKind::Jpeg => "JPEG artefacts",
            OpKind::Clip => "Over-exposure (clipped)",
            OpKind::PhaseRetrieval => "Phase retrieval (|Fourier|)",
        }
    }
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
    /// Inpainting: the base pattern under the brush strokes.
    pub pattern: MaskPattern,
    pub factor: usize,
    pub blur_sigma: f64,
    pub noise_sigma: f64,
    pub sampler: String,
    pub chains: usize,
    pub seed: u64,
    /// The picture is a real degraded observation: y = A(picture) exactly, no noise added and
    /// no truth (PSNR is not shown).
    pub image_is_y: bool,
    /// The class asked of a class-conditional prior.
    pub class: usize,
    /// JPEG: the quality (1–100); read from the file when the picture is a real JPEG y.
    pub jpeg_quality: u32,
    /// Over-exposure: the gain g.
    pub clip_gain: f64,
    /// Phase retrieval: the padding, in eighths of the picture's size per side.
    pub oversample: f64,
    /// Photon noise: the expected count of a white value (σ_y is then the read noise).
    pub photon_peak: Option<f64>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            prior: "fashion-mnist".into(),
            image: "fashion-sneaker".into(),
            op: OpKind::Inpaint,
            pattern: MaskPattern::default(),
            factor: 2,
            blur_sigma: 1.5,
            noise_sigma: 0.05,
            sampler: samplers::ALL[0].preset.into(),
            chains: 16,
            seed: 1,
            image_is_y: false,
            class: 0,
            jpeg_quality: 20,
            clip_gain: 2.0,
            oversample: 2.0,
            photon_peak: None,
        }
    }
}

impl Setup {
    /// Seen (true) / missing (false) per pixel of an H×W picture: the pattern and the strokes.
    pub fn mask_raster(&self, mask: &MaskEditor, h: usize, w: usize) -> Vec<bool> {
        mask.raster(&self.pattern, self.seed, h, w)
    }

    /// The noise model and its Gaussian σ: none added to a JPEG's deterministic round trip;
    /// with photon noise, σ_y is the read noise.
    pub fn noise(&self) -> (NoiseModel, f64) {
        let model = match self.photon_peak {
            Some(peak) => NoiseModel::Poisson { peak },
            None => NoiseModel::Gaussian,
        };
        let sigma = if self.op == OpKind::Jpeg {
            0.0
        } else {
            self.noise_sigma
        };
        (model, sigma)
    }

    /// Linear A and Gaussian noise: what DDRM, ΠGDM and EPS take.
    pub fn is_linear_gaussian(&self) -> bool {
        self.op.is_linear() && self.photon_peak.is_none()
    }

    /// The measurement as the samplers' support reads it (an image: never the plane).
    pub fn measurement_kind(&self) -> samplers::MeasurementKind {
        samplers::MeasurementKind {
            linear_gaussian: self.is_linear_gaussian(),
            whitenable: self.photon_peak.is_some()
                && matches!(self.op, OpKind::Denoise | OpKind::Inpaint),
            plane_mixture: false,
            round_trip: self.op == OpKind::Jpeg && self.photon_peak.is_none(),
        }
    }

    /// The family an EPS fine-tune would have to cover for this degradation.
    pub fn eps_family(&self) -> Option<EpsOperator> {
        match self.op {
            OpKind::Inpaint => Some(EpsOperator::Mask),
            OpKind::Downsample => Some(EpsOperator::Downsample(self.factor)),
            _ => None,
        }
    }

    /// The operator of the recipe; an inpainting mask is named `mask.npy` (see [`Self::recipe`]).
    pub fn operator_spec(&self, shape: [usize; 3]) -> Result<OperatorSpec> {
        let [c, h, w] = shape;
        Ok(match self.op {
            OpKind::Denoise => OperatorSpec::Identity,
            OpKind::Inpaint => OperatorSpec::Mask("mask.npy".into()),
            OpKind::Downsample => {
                if self.factor < 2 || h % self.factor != 0 || w % self.factor != 0 {
                    return Err(Error::invalid(
                        "super-resolution factor",
                        format!("{} does not divide the image size {w}×{h}", self.factor),
                    ));
                }
                OperatorSpec::Downsample(self.factor)
            }
            OpKind::Blur => OperatorSpec::Blur {
                sigma: self.blur_sigma,
            },
            OpKind::Grayscale => {
                if c != 3 {
                    return Err(Error::invalid(
                        "colourise",
                        "needs a colour prior; this one is grey",
                    ));
                }
                OperatorSpec::Grayscale
            }
            OpKind::Jpeg => OperatorSpec::Jpeg {
                quality: self.jpeg_quality,
            },
            OpKind::Clip => OperatorSpec::Clip {
                gain: self.clip_gain,
            },
            OpKind::PhaseRetrieval => OperatorSpec::PhaseRetrieval {
                oversample: self.oversample,
            },
        })
    }

    /// The operator in memory (the mask from its raster, no file): the preview's.
    pub fn operator(
        &self,
        shape: [usize; 3],
        mask: &MaskEditor,
        device: &Device,
    ) -> Result<Box<dyn Operator>> {
        let spec = self.operator_spec(shape)?;
        if let OperatorSpec::Mask(_) = spec {
            let [_, h, w] = shape;
            let data = mask_values(&self.mask_raster(mask, h, w));
            return Ok(Box::new(Mask::from_array(shape, &[h, w], data, device)?));
        }
        operators::build(&spec, shape, Path::new("."), device)
    }

    /// The shape x is restored at for a picture of `picture` shape: the picture's own, or, when
    /// the picture is a low-resolution y, the factor times larger (true upscaling).
    pub fn x_shape(&self, picture: [usize; 3]) -> [usize; 3] {
        let [c, h, w] = picture;
        match (self.image_is_y, self.op) {
            (true, OpKind::Downsample) => [c, h * self.factor.max(1), w * self.factor.max(1)],
            _ => picture,
        }
    }

    /// y of the current choices for the picture ([1, C, H, W]), exactly as the run will have
    /// it. A real degraded picture is y itself: as it is when it is already blurred, noisy,
    /// small, a JPEG or over-exposed, through A where A only drops information (a mask's holes,
    /// the colour) or where no picture can be y (a Fourier magnitude). Otherwise the picture
    /// is the truth and y = A(x) plus the recipe's noise draw
    /// ([`crate::recipe::simulate_measurement`]).
    pub fn measure(&self, op: &dyn Operator, picture: Tensor<4>) -> Result<Tensor<4>> {
        if !self.image_is_y {
            return crate::recipe::simulate_measurement(op, picture, self.noise(), self.seed);
        }
        Ok(match self.op {
            OpKind::Denoise | OpKind::Blur | OpKind::Downsample => picture,
            OpKind::Jpeg | OpKind::Clip => picture,
            OpKind::Inpaint | OpKind::Grayscale | OpKind::PhaseRetrieval => op.forward(picture),
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
        let sampler = samplers::parse(&self.sampler)
            .map_err(|e| Error::invalid("sampler", format!("not a valid sampler: {e}")))?;
        let picture = shape;
        let shape = self.x_shape(picture);
        let operator = self.operator_spec(shape)?;
        let [c, h, w] = shape;
        if let OperatorSpec::Mask(file) = &operator {
            let data = mask_values(&self.mask_raster(mask, h, w));
            crate::npy::write(&dir.join(file), &[h, w], &data)?;
        }
        let measurement = if self.image_is_y {
            // The picture already is the observation: y = A(picture), in the operator's shape.
            let device = Device::flex();
            let op = self.operator(shape, mask, &device)?;
            let [pc, ph, pw] = picture;
            let x = crate::tensor::from_vec(truth.to_vec(), [1, pc, ph, pw], &device);
            let y = crate::tensor::to_vec(&self.measure(op.as_ref(), x)?)?;
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
            shape: (c, h, w),
            operator,
            measurement,
            noise_sigma: self.noise().1,
            noise_model: self.noise().0,
            sampler,
            chains: self.chains.clamp(1, 4096),
            seed: self.seed,
            class: None,
        })
    }
}

fn mask_values(seen: &[bool]) -> Vec<f32> {
    seen.iter().map(|&s| if s { 1.0 } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real low-resolution picture is y as it is, and x is the factor times larger: true
    /// upscaling, not a further shrunk copy.
    #[test]
    fn a_real_small_picture_is_y_and_is_upscaled() {
        let dir = std::env::temp_dir().join(format!("pl-setup-y-{}", std::process::id()));
        let setup = Setup {
            image_is_y: true,
            op: OpKind::Downsample,
            factor: 2,
            ..Setup::default()
        };
        let picture: Vec<f32> = (0..12).map(|i| i as f32 / 16.0).collect();
        let r = setup
            .recipe(
                PriorSpec::Gmm("unused.ron".into()),
                [1, 3, 4],
                &picture,
                &MaskEditor::new(),
                &dir,
            )
            .unwrap();
        assert_eq!(r.measurement, MeasurementSpec::Npy("y.npy".into()));
        assert_eq!(r.shape, (1, 6, 8));
        assert_eq!(r.operator, OperatorSpec::Downsample(2));
        let y = crate::npy::read(&dir.join("y.npy")).unwrap();
        assert_eq!(y.shape, vec![1, 3, 4]);
        assert_eq!(y.data, picture, "the picture itself, no noise added");
        assert!(!dir.join("truth.npy").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A blurred photo is not blurred again; holes and lost colour go through A.
    #[test]
    fn a_real_blurred_or_scratched_picture_is_its_own_y() {
        let device = Device::flex();
        let picture: Vec<f32> = (0..48).map(|i| (i as f32 / 24.0) - 1.0).collect();
        let x = crate::tensor::from_vec(picture.clone(), [1, 3, 4, 4], &device);
        for (op, same) in [
            (OpKind::Blur, true),
            (OpKind::Denoise, true),
            (OpKind::Grayscale, false),
        ] {
            let setup = Setup {
                image_is_y: true,
                op,
                ..Setup::default()
            };
            assert_eq!(setup.x_shape([3, 4, 4]), [3, 4, 4]);
            let a = setup
                .operator([3, 4, 4], &MaskEditor::new(), &device)
                .unwrap();
            let y = crate::tensor::to_vec(&setup.measure(a.as_ref(), x.clone()).unwrap()).unwrap();
            assert_eq!(y == picture, same, "{op:?}");
        }
    }

    #[test]
    fn every_preset_parses_to_its_sampler() {
        for info in samplers::ALL {
            for line in [info.preset_for(false), info.preset_for(true)] {
                let spec = samplers::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(spec.name(), info.name);
                assert_eq!(spec.info(), *info);
            }
            // The window's default fonts draw Latin, Greek and a few signs; anything else
            // (‖, √, ᵀ, x̂) panics egui_kittest and shows as tofu in the window.
            for c in info.help.chars().chain(info.preset.chars()) {
                let u = c as u32;
                let drawable = u < 0x7f
                    || (0xa0..=0xff).contains(&u)
                    || (0x370..=0x3ff).contains(&u)
                    || "—…–’×".contains(c);
                assert!(drawable, "{}: {c:?} in its help has no glyph", info.name);
            }
        }
    }

    #[test]
    fn the_preview_y_is_the_run_y() {
        // The y a run restores comes from the recipe (simulated by the loader); the preview
        // computes it from the choices in memory: both must be the same draw.
        let dir = std::env::temp_dir().join(format!("pl-setup-same-y-{}", std::process::id()));
        let setup = Setup {
            op: OpKind::Inpaint,
            noise_sigma: 0.1,
            seed: 9,
            ..Setup::default()
        };
        let shape = [1, 8, 8];
        let picture: Vec<f32> = (0..64).map(|i| (i as f32 / 32.0) - 1.0).collect();
        let gmm = dir.join("gmm.ron");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&gmm, include_str!("../../assets/recipes/gmm-8x8.ron")).unwrap();
        let recipe = setup
            .recipe(
                PriorSpec::Gmm(gmm.display().to_string()),
                shape,
                &picture,
                &MaskEditor::new(),
                &dir,
            )
            .unwrap();
        let device = Device::flex();
        let loaded = crate::recipe::load_recipe(recipe, &dir, &device).unwrap();
        let op = setup.operator(shape, &MaskEditor::new(), &device).unwrap();
        let x = crate::tensor::from_vec(picture, [1, 1, 8, 8], &device);
        let preview = crate::tensor::to_vec(&setup.measure(op.as_ref(), x).unwrap()).unwrap();
        assert_eq!(preview, loaded.y);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
