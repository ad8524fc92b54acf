//! Exact posterior sampling for a Gaussian-mixture prior: under a linear Gaussian measurement
//! the posterior is again a mixture (closed form, f64), sampled directly; in the plane any
//! measurement works, its posterior computed on a grid ([`GridPosterior`]). No prior
//! evaluations.

use super::grid_posterior::{GRID_SIDE, GridPosterior};
use super::{ChainState, Sampler};
use crate::error::{Error, Result};
use crate::priors::Gmm;
use crate::problem::Problem;
use crate::tensor::{self, Rng};
use burn::tensor::Tensor;

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Exact",
    preset: "Exact",
    help: "Exact posterior samples: Gaussian-mixture priors only (the posterior is a mixture in closed form, computed in f64; for a two-dimensional mixture under any measurement, the posterior on a 1024² grid).",
    priors: super::PriorSupport::MixtureOnly,
    measurements: super::MeasurementSupport::LinearGaussianOrPlane,
    anneals: false,
    patch_preset: None,
};

/// The posterior in closed form, or on a grid.
pub enum ExactPosterior {
    Mixture(Gmm),
    Grid(GridPosterior),
}

pub struct Exact {
    posterior: ExactPosterior,
    chains: usize,
    rng: Rng,
    state: ChainState,
}

impl Exact {
    pub fn new(problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        let Some(gmm) = problem.prior.gmm() else {
            return Err(Error::Unsupported {
                sampler: "Exact".into(),
                reason: format!(
                    "it needs a Gaussian-mixture prior, not {}",
                    problem.prior.describe()
                ),
            });
        };
        let posterior = if problem.is_linear_gaussian() {
            let a = problem.operator.dense(&problem.device)?;
            ExactPosterior::Mixture(gmm.posterior(&a, &problem.y_f64()?, problem.sigma_y)?)
        } else {
            ExactPosterior::Grid(GridPosterior::new(problem, gmm, GRID_SIDE)?)
        };
        let [c, h, w] = problem.shape();
        let zeros = Tensor::zeros([chains, c, h, w], &problem.device);
        Ok(Self {
            posterior,
            chains,
            rng: tensor::rng(seed),
            state: ChainState {
                x: zeros.clone(),
                x0_hat: zeros,
                sigma: 0.0,
                step: 0,
                total_steps: 1,
                nfe: 0,
            },
        })
    }

    pub fn posterior(&self) -> &ExactPosterior {
        &self.posterior
    }
}

impl Sampler for Exact {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        if self.is_done() {
            return Ok(());
        }
        let flat: Vec<f64> = match &self.posterior {
            ExactPosterior::Mixture(g) => g.sample(self.chains, &mut self.rng).0.concat(),
            ExactPosterior::Grid(g) => g.sample(self.chains, &mut self.rng).concat(),
        };
        let [c, h, w] = problem.shape();
        let x = tensor::from_f64(&flat, [self.chains, c, h, w], &problem.device);
        self.state.x = x.clone();
        self.state.x0_hat = x;
        self.state.step = 1;
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.state
    }
}
