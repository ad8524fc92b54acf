//! How the chains vary, and whether their spread can be trusted.
//!
//! - [`pca()`]: principal directions of the centred chains, from the chains×chains Gram matrix
//!   (an image has up to millions of pixels, a run at most a few hundred chains), largest
//!   variance first, with each chain's coordinates so the window can find the chain nearest to a
//!   point along a direction.
//! - [`pixel_stats()`]: per-pixel empirical 2.5% and 97.5% quantiles and, when the truth is known,
//!   the coverage of central credible intervals, the z² statistic, the CRPS and a surprise map.
//!
//! Quantile convention: Hyndman–Fan type 6, position p·(n + 1) among the n sorted draws (1-based),
//! linear in between, clamped to the extremes. With n exchangeable draws and a truth drawn from
//! the same law, the central interval of level L then covers the truth with probability L
//! exactly when (n + 1)(1 − L)/2 is whole (39 or 199 chains at 95%); numpy's default (type 7)
//! covers only (n − 1)L/(n + 1) and would make a calibrated sampler look over-confident. With
//! fewer than 2/(1 − L) − 1 chains a level's interval is the sample range, which covers at most
//! (n − 1)/(n + 1).

mod intervals;
mod pca;

pub use intervals::{Calibration, PixelStats, RegionFigures, crps_sorted, pixel_stats, quantile};
pub use pca::{Pca, check_components, pca};

/// The central-interval levels whose coverage is reported.
pub const LEVELS: [f64; 4] = [0.5, 0.8, 0.9, 0.95];
/// Principal components computed when the user does not ask for a number.
pub const DEFAULT_COMPONENTS: usize = 16;
