//! What a sampler takes: which priors and which measurements, and the one line that says why
//! not (the window greys a sampler out with it; `build` refuses with it).

use super::{ChainState, Sampler, SamplerInfo, SamplerSpec};
use crate::error::Result;
use crate::problem::Problem;
use burn::tensor::Tensor;

/// The priors a sampler needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorSupport {
    /// Any prior (networks and mixtures).
    Any,
    /// Gaussian-mixture priors only (closed-form posteriors).
    MixtureOnly,
}

/// The measurements a sampler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurementSupport {
    /// Any differentiable A (through `forward` and its VJP) and any noise model.
    Any,
    /// A linear A with Gaussian noise: the method uses Aᵀ, an SVD or closed-form solves.
    LinearGaussian,
    /// Linear-Gaussian, or any measurement of a two-dimensional mixture prior (whose posterior
    /// is computed on a grid).
    LinearGaussianOrPlane,
    /// Linear-Gaussian, or a decoded round trip (JPEG) through its pseudo-inverse construction.
    LinearGaussianOrRoundTrip,
}

impl MeasurementSupport {
    /// Whether the steps need Gaussian noise (photon noise goes in through its Gaussian
    /// approximation where A is diagonal).
    pub fn needs_gaussian_steps(self) -> bool {
        matches!(
            self,
            MeasurementSupport::LinearGaussian | MeasurementSupport::LinearGaussianOrRoundTrip
        )
    }
}

/// What the measurement support is read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasurementKind {
    /// Linear A, Gaussian noise, no model error.
    pub linear_gaussian: bool,
    /// Photon noise through a linear diagonal A ([`crate::problem::Problem::is_whitenable`]).
    pub whitenable: bool,
    /// x has two values and the prior is a mixture (the grid posterior).
    pub plane_mixture: bool,
    /// A decoded round trip (JPEG) with Gaussian noise.
    pub round_trip: bool,
}

impl SamplerInfo {
    /// Whether the sampler takes this problem's measurement; if not, why, in one line.
    pub fn takes(&self, problem: &Problem) -> std::result::Result<(), String> {
        let plane = problem.dim() == 2 && problem.prior.gmm().is_some();
        let kind = MeasurementKind {
            linear_gaussian: problem.is_linear_gaussian(),
            whitenable: problem.is_whitenable(),
            plane_mixture: plane,
            round_trip: problem.is_round_trip(),
        };
        self.takes_kind(kind)
            .map_err(|why| format!("cannot take {}: {why}", problem.measurement_label()))
    }

    /// Whether the sampler takes a measurement of this kind; if not, why.
    pub fn takes_kind(&self, kind: MeasurementKind) -> std::result::Result<(), String> {
        let ok = match self.measurements {
            MeasurementSupport::Any => true,
            // Photon noise through its Gaussian approximation (`whitened`).
            MeasurementSupport::LinearGaussian => kind.linear_gaussian || kind.whitenable,
            MeasurementSupport::LinearGaussianOrPlane => kind.linear_gaussian || kind.plane_mixture,
            MeasurementSupport::LinearGaussianOrRoundTrip => {
                kind.linear_gaussian || kind.whitenable || kind.round_trip
            }
        };
        if ok {
            return Ok(());
        }
        let why = match self.measurements {
            MeasurementSupport::LinearGaussianOrPlane => {
                "its posterior is in closed form only for a linear operator with Gaussian noise \
                 (any measurement works on a two-dimensional mixture)"
            }
            MeasurementSupport::LinearGaussianOrRoundTrip => {
                "its steps use the adjoint of A and closed-form solves of a linear operator with Gaussian noise, \
                 or a decoder (JPEG); photon noise only through a diagonal one"
            }
            _ => {
                "its steps use the adjoint of A and closed-form solves of a linear operator with Gaussian noise \
                 (photon noise only through a diagonal one: denoising, inpainting)"
            }
        };
        Err(format!(
            "{why}; Dps, Daps, Ald, Almc, NoiseSpaceLangevin and DiffPir can"
        ))
    }

    /// The preset for a patch prior (`patch`) or any other.
    pub fn preset_for(&self, patch: bool) -> &'static str {
        match self.patch_preset {
            Some(line) if patch => line,
            _ => self.preset,
        }
    }

    /// Whether the sampler runs on this kind of prior; if not, why.
    pub fn supports(&self, prior_is_mixture: bool) -> std::result::Result<(), String> {
        match self.priors {
            PriorSupport::MixtureOnly if !prior_is_mixture => Err(format!(
                "{} needs a Gaussian-mixture prior (its posterior is known in closed form)",
                self.name
            )),
            _ => Ok(()),
        }
    }
}

/// Which likelihood a sampler uses on a measurement beyond linear-Gaussian, in a few words (the
/// summary's and the status line's detail, so only glyphs the window's font has); None where there is nothing to say (linear
/// Gaussian, `Auto` whose chosen sampler says it, `Exact`, the prior alone, the whitened
/// samplers that say it themselves).
pub fn likelihood_note(spec: &SamplerSpec, problem: &Problem) -> Option<String> {
    if problem.is_linear_gaussian() {
        return None;
    }
    let photons = !problem.noise.is_gaussian();
    let rounding = problem.operator.model_error_sigma();
    let width = if rounding > 0.0 {
        format!(", the rounding as noise (σ_y {:.3})", problem.sigma_y)
    } else {
        String::new()
    };
    let likelihood = if photons {
        "the Poisson log-likelihood"
    } else {
        "the Gaussian likelihood"
    };
    let through = if problem.operator.is_linear() {
        ""
    } else {
        " through A's VJP"
    };
    Some(match spec {
        SamplerSpec::Dps(_) if photons => format!("DPS's weighted least squares{width}"),
        SamplerSpec::Dps(_) => format!("the residual's norm by autodiff through A{width}"),
        SamplerSpec::Daps(_) | SamplerSpec::Ald(_) | SamplerSpec::Almc(_) => {
            format!("the gradient of {likelihood}{through}{width}")
        }
        SamplerSpec::NoiseSpaceLangevin(_) => {
            format!("the deviance of {likelihood} through the generator{width}")
        }
        SamplerSpec::DiffPir(_) => {
            format!("20 gradient steps on {likelihood}{through} for the data step{width}")
        }
        SamplerSpec::PiGdm(_) if problem.is_round_trip() => {
            format!("the decoder's pseudo-inverse (y minus the estimate's round trip){width}")
        }
        _ => return None,
    })
}

/// A sampler whose detail also says which likelihood it uses; with a problem of its own (the
/// whitened one), it steps on that instead of the one it is given.
pub struct Noted {
    inner: Box<dyn Sampler>,
    note: String,
    own: Option<Problem>,
}

impl Noted {
    pub fn new(inner: Box<dyn Sampler>, note: String) -> Self {
        Self {
            inner,
            note,
            own: None,
        }
    }

    pub fn with_problem(mut self, problem: Problem) -> Self {
        self.own = Some(problem);
        self
    }
}

impl Sampler for Noted {
    fn info(&self) -> &'static SamplerInfo {
        self.inner.info()
    }
    fn step(&mut self, problem: &Problem) -> Result<()> {
        self.inner.step(self.own.as_ref().unwrap_or(problem))
    }
    fn state(&self) -> &ChainState {
        self.inner.state()
    }
    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
    fn detail(&self) -> Option<String> {
        Some(match self.inner.detail() {
            Some(d) => format!("{d}; likelihood: {}", self.note),
            None => format!("likelihood: {}", self.note),
        })
    }
    fn samples(&self) -> Tensor<4> {
        self.inner.samples()
    }
}
