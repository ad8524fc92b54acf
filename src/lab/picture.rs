//! What the lab's plot shows besides the particles, computed off the UI thread: a density on a
//! grid over the visible square (prior, likelihood or posterior, clean or noised at σ), arrows of
//! the chosen fields at σ, and exact posterior samples as a reference cloud.

use super::fields::{Field, Scene};
use super::scene::LabScene;
use crate::error::Result;
use crate::tensor;
use rayon::prelude::*;

/// The visible part of the plane.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bounds {
    pub min: [f64; 2],
    pub max: [f64; 2],
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            min: [-3.5, -3.5],
            max: [3.5, 3.5],
        }
    }
}

impl Bounds {
    /// The point at fractions (u, v) of the width and height (v from the bottom).
    pub fn at(&self, u: f64, v: f64) -> [f64; 2] {
        [
            self.min[0] + u * (self.max[0] - self.min[0]),
            self.min[1] + v * (self.max[1] - self.min[1]),
        ]
    }

    pub fn size(&self) -> [f64; 2] {
        [self.max[0] - self.min[0], self.max[1] - self.min[1]]
    }
}

/// Which density the plot is shaded with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Density {
    None,
    Prior,
    Likelihood,
    #[default]
    Posterior,
}

impl Density {
    pub const ALL: [Density; 4] = [
        Density::None,
        Density::Prior,
        Density::Likelihood,
        Density::Posterior,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Density::None => "none",
            Density::Prior => "prior",
            Density::Likelihood => "likelihood",
            Density::Posterior => "exact posterior",
        }
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub scene: LabScene,
    pub bounds: Bounds,
    pub density: Density,
    /// Noised versions at `sigma` (p_σ), else the clean densities.
    pub noised: bool,
    pub sigma: f64,
    /// Cells per side of the density grid.
    pub grid: usize,
    pub fields: Vec<Field>,
    /// Arrows per side.
    pub arrows: usize,
    /// Exact posterior samples to draw (0: none), from a fixed seed.
    pub reference: usize,
}

/// A computed picture.
#[derive(Debug, Clone, Default)]
pub struct Picture {
    /// Density on `grid × grid` cell centres, row 0 at the top, scaled to a maximum of 1.
    pub density: Vec<f32>,
    pub grid: usize,
    /// Arrow tails (cell centres of an `arrows × arrows` grid, row 0 at the top).
    pub points: Vec<[f64; 2]>,
    /// Per requested field, its vector at each point.
    pub fields: Vec<(Field, Vec<[f64; 2]>)>,
    /// Exact posterior samples.
    pub reference: Vec<[f32; 2]>,
}

/// The centre of cell (i, j) of an n × n grid over `b`, row i from the top.
pub fn cell_centre(b: &Bounds, n: usize, i: usize, j: usize) -> [f64; 2] {
    let u = (j as f64 + 0.5) / n as f64;
    let v = 1.0 - (i as f64 + 0.5) / n as f64;
    b.at(u, v)
}

/// The lowest noise level fields are drawn at (the clean scores are those of σ → 0).
pub const MIN_SIGMA: f64 = 1e-3;

impl Request {
    /// Computes the picture (a bad scene gives its one message).
    pub fn compute(&self) -> Result<Picture> {
        let scene = self.scene.scene()?;
        let sigma = if self.noised {
            self.sigma.max(0.0)
        } else {
            0.0
        };
        let n = self.grid;
        let mut density = vec![];
        if self.density != Density::None && n > 0 {
            let logs: Vec<f64> = (0..n * n)
                .into_par_iter()
                .map(|c| {
                    let p = cell_centre(&self.bounds, n, c / n, c % n);
                    log_density(&scene, self.density, &p, sigma)
                })
                .collect();
            let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            density = logs.iter().map(|l| (l - top).exp() as f32).collect();
        }
        let m = self.arrows;
        let points: Vec<[f64; 2]> = (0..m * m)
            .map(|c| cell_centre(&self.bounds, m, c / m, c % m))
            .collect();
        let sigma_f = self.sigma.max(MIN_SIGMA);
        let mut fields = vec![];
        for &f in &self.fields {
            let v = points
                .par_iter()
                .map(|p| scene.field(f, p, sigma_f).map(|g| [g[0], g[1]]))
                .collect::<Result<Vec<_>>>()?;
            fields.push((f, v));
        }
        let reference = scene
            .posterior()
            .sample(self.reference, &mut tensor::rng(2024))
            .0
            .into_iter()
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect();
        Ok(Picture {
            density,
            grid: n,
            points,
            fields,
            reference,
        })
    }
}

/// log of the chosen density at x (up to a constant), noised at σ (σ = 0: clean). The noised
/// likelihood is p_σ(y | x) = p_σ(x | y) p(y) / p_σ(x).
pub fn log_density(scene: &Scene, which: Density, x: &[f64; 2], sigma: f64) -> f64 {
    match which {
        Density::None => 0.0,
        Density::Prior => scene.prior.noised_log_density(x, sigma),
        Density::Posterior => scene.posterior().noised_log_density(x, sigma),
        Density::Likelihood => {
            scene.posterior().noised_log_density(x, sigma)
                - scene.prior.noised_log_density(x, sigma)
        }
    }
}
