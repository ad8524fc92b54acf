//! DDRM's damage-only evaluation (see [`super::DdrmParams::whole_picture`]): on a mask, the
//! prior is evaluated only where DDRM uses its estimate — the holes while σ is above σ_y, the
//! whole picture once at the first step below it, then the holes and their surroundings.

use crate::problem::Problem;
use crate::tensor;
use burn::tensor::Tensor;

/// How far from a hole (pixels) the steps below σ_y still evaluate the prior, when only the
/// damage is evaluated: two 48-pixel tiles' overlap (docs/photo-table.md measures the
/// difference to a whole-picture run).
pub const NEAR_HOLE: usize = 24;

/// An H×W map of where the prior must be right, with what it costs and the masks that keep
/// its values there (made once: every step uses them).
struct Region {
    map: Vec<bool>,
    /// The share of the prior's tiles that hold a pixel of `map`.
    share: f64,
    /// 1 on the map, 0 elsewhere, and the reverse, as [1, 1, H, W].
    keep: Tensor<4>,
    drop: Tensor<4>,
}

impl Region {
    /// None when the prior would do the whole picture's work for it anyway (not run in tiles,
    /// or every tile holds a pixel of the map).
    fn new(map: Vec<bool>, problem: &Problem) -> Option<Self> {
        let [_, h, w] = problem.shape();
        let share = problem.prior.share_of_work(h, w, &map);
        if share >= 1.0 {
            return None;
        }
        let keep: Vec<f32> = map.iter().map(|n| f32::from(u8::from(*n))).collect();
        let keep = tensor::from_vec(keep, [1, 1, h, w], &problem.device);
        let drop = keep.clone().neg().add_scalar(1.0);
        Some(Self {
            map,
            share,
            keep,
            drop,
        })
    }

    fn everywhere(problem: &Problem) -> Self {
        let [_, h, w] = problem.shape();
        let keep = Tensor::<4>::ones([1, 1, h, w], &problem.device);
        Self {
            map: vec![true; h * w],
            share: 1.0,
            drop: keep.zeros_like(),
            keep,
        }
    }
}

/// Which pixels the prior must be evaluated on at a step of DDRM with a mask (V = I).
pub(super) struct Damage {
    holes: Region,
    near: Region,
    /// D(x) of the first step below σ_y on the whole picture: the observed pixels away from
    /// the holes keep it.
    frozen: Option<Tensor<4>>,
    /// Work done, in whole-picture evaluations, and steps taken.
    work: f64,
    steps: usize,
}

impl Damage {
    /// None when the prior would do the whole picture's work anyway (not run in tiles, or
    /// every tile holds a hole): the steps then evaluate it everywhere, as written.
    pub(super) fn new(s: &[f64], problem: &Problem) -> Option<Self> {
        // The steps below assume every seen value is measured with σ_y: a mask of 0s and 1s,
        // not per-value gains (a whitened photon measurement).
        if s.iter().any(|v| *v > 1e-6 && (v - 1.0).abs() > 1e-6) {
            return None;
        }
        let [c, h, w] = problem.shape();
        let holes: Vec<bool> = (0..h * w)
            .map(|p| (0..c).any(|ch| s[ch * h * w + p] <= 1e-6))
            .collect();
        let holes = Region::new(holes, problem)?;
        let near = dilate(&holes.map, [h, w], NEAR_HOLE);
        let near = Region::new(near, problem).unwrap_or_else(|| Region::everywhere(problem));
        Some(Self {
            holes,
            near,
            frozen: None,
            work: 0.0,
            steps: 0,
        })
    }

    /// D(x, σ) where this step uses it: in the holes while σ' ≥ σ_y (`low` false: the
    /// observed pixels then follow y alone, so they get ȳ, shown but unused); the whole
    /// picture at the first step below σ_y; the holes and their surroundings after it.
    pub(super) fn denoise(
        &mut self,
        problem: &Problem,
        x: Tensor<4>,
        sigma: f64,
        low: bool,
        ybar: &Tensor<2>,
    ) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let prior = problem.prior.as_ref();
        self.steps += 1;
        let (needed, other) = match (&self.frozen, low) {
            (None, true) => {
                let x0 = prior.denoise(x, sigma);
                self.frozen = Some(x0.clone());
                self.work += 1.0;
                return x0;
            }
            (Some(frozen), true) => (&self.near, frozen.clone()),
            (_, false) => (
                &self.holes,
                ybar.clone().reshape([1, c, h, w]).expand([b, c, h, w]),
            ),
        };
        self.work += needed.share;
        let fresh = prior.denoise_where(x, sigma, &needed.map);
        fresh * needed.keep.clone() + other * needed.drop.clone()
    }

    /// The share of the work done, when it was less than the whole picture's.
    pub(super) fn detail(&self) -> Option<String> {
        let share = self.work / self.steps.max(1) as f64;
        (self.steps > 0 && share < 0.999).then(|| {
            format!(
                "the prior evaluated on {:.0}% of the picture's tiles (the damaged ones)",
                100.0 * share
            )
        })
    }
}

/// The pixels within `r` (Chebyshev distance) of a marked one, on an H×W map.
fn dilate(map: &[bool], [h, w]: [usize; 2], r: usize) -> Vec<bool> {
    let pass = |src: &[bool], along_rows: bool| -> Vec<bool> {
        let mut out = vec![false; h * w];
        let (n_lines, len) = if along_rows { (h, w) } else { (w, h) };
        let at = |line: usize, k: usize| {
            if along_rows {
                line * w + k
            } else {
                k * w + line
            }
        };
        for line in 0..n_lines {
            // Distance to the last marked pixel seen, forwards then backwards.
            let mut last: Option<usize> = None;
            for k in 0..len {
                if src[at(line, k)] {
                    last = Some(k);
                }
                out[at(line, k)] = last.is_some_and(|l| k - l <= r);
            }
            last = None;
            for k in (0..len).rev() {
                if src[at(line, k)] {
                    last = Some(k);
                }
                if last.is_some_and(|l| l - k <= r) {
                    out[at(line, k)] = true;
                }
            }
        }
        out
    };
    pass(&pass(map, true), false)
}
