//! The mixture file of the command-line contract: its RON form, its checks and limits, and
//! reading it into a [`Gmm`].

use super::gmm::Gmm;
use crate::error::{Error, Result};
use crate::linalg::Mat;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Most f64 entries of all covariance matrices of a mixture together (1 GiB).
const MAX_DENSE_ENTRIES: u128 = 1 << 27;

/// The RON file form (see the command-line contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GmmFile {
    pub weights: Vec<f64>,
    pub means: Vec<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariances: Option<Vec<Vec<Vec<f64>>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variances: Option<Vec<Vec<f64>>>,
}

impl Gmm {
    /// Largest d of a mixture with full covariances.
    pub const MAX_FULL_COVARIANCE_DIM: usize = 256;

    pub fn from_spec(spec: GmmFile) -> Result<Self> {
        let k = spec.weights.len();
        // Each component is held as a dense d×d matrix and full covariances are
        // eigendecomposed: bound both before allocating (minutes or gigabytes otherwise).
        let d = spec.means.first().map_or(0, Vec::len);
        let entries = (k as u128) * (d as u128) * (d as u128);
        if entries > MAX_DENSE_ENTRIES {
            return Err(Error::invalid(
                "mixture",
                format!(
                    "{k} components of dimension {d} need {:.1} GiB of covariance matrices; \
                     the limit is {} GiB (fewer components or a smaller image)",
                    (entries * 8) as f64 / (1u64 << 30) as f64,
                    (MAX_DENSE_ENTRIES * 8) >> 30
                ),
            ));
        }
        if spec.covariances.is_some() && d > Self::MAX_FULL_COVARIANCE_DIM {
            return Err(Error::invalid(
                "covariances",
                format!(
                    "full covariances are limited to d <= {} (each is \
                     eigendecomposed, O(d^3)); this mixture has d = {d}: give `variances` instead",
                    Self::MAX_FULL_COVARIANCE_DIM
                ),
            ));
        }
        let covs = match (spec.covariances, spec.variances) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "mixture",
                    "give either `covariances` or `variances`, not both",
                ));
            }
            (None, None) => {
                return Err(Error::invalid(
                    "mixture",
                    "missing `covariances` (or `variances`)",
                ));
            }
            (Some(full), None) => full
                .into_iter()
                .enumerate()
                .map(|(i, rows)| {
                    let d = rows.len();
                    if rows.iter().any(|r| r.len() != d) {
                        return Err(Error::invalid(
                            "covariances",
                            format!("covariance {i} is not square"),
                        ));
                    }
                    Ok(Mat::from_rows(d, d, rows.into_iter().flatten().collect()))
                })
                .collect::<Result<Vec<_>>>()?,
            (None, Some(vars)) => vars
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    if v.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                        return Err(Error::invalid(
                            "variances",
                            format!("variances {i} must be positive numbers"),
                        ));
                    }
                    Ok(Mat::from_diag(&v))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        if covs.len() != k {
            return Err(Error::invalid(
                "mixture",
                format!("{k} weights but {} covariances", covs.len()),
            ));
        }
        Self::new(spec.weights, spec.means, covs)
    }

    /// Parses the text of a mixture file (the file's checks, without its dimension).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let spec: GmmFile = crate::ron_format::options()
            .from_str(text)
            .map_err(|e| format!("not a valid mixture file: {e}"))?;
        Self::from_spec(spec).map_err(|e| e.to_string())
    }

    /// Reads a mixture file and checks its dimension against `expected_dim` (= C·H·W).
    pub fn from_file(path: &Path, expected_dim: Option<usize>) -> Result<Self> {
        let text = crate::files::read_text(path)?;
        let spec: GmmFile = crate::ron_format::options()
            .from_str(&text)
            .map_err(|e| Error::file(path, format!("not a valid mixture file: {e}")))?;
        let gmm = Self::from_spec(spec).map_err(|e| e.in_file(path))?;
        if let Some(d) = expected_dim
            && gmm.dim() != d
        {
            return Err(Error::file(
                path,
                format!(
                    "the mixture has dimension {} but the recipe's shape has C*H*W = {d}",
                    gmm.dim()
                ),
            ));
        }
        Ok(gmm)
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn oversized_mixtures_are_refused_before_allocating() {
        let d = Gmm::MAX_FULL_COVARIANCE_DIM + 1;
        let full = GmmFile {
            weights: vec![1.0],
            means: vec![vec![0.0; d]],
            covariances: Some(vec![vec![vec![0.0; d]; d]]),
            variances: None,
        };
        let err = Gmm::from_spec(full).unwrap_err().to_string();
        assert!(err.contains("variances"), "{err}");
        let (k, d) = (40, 2048);
        let many = GmmFile {
            weights: vec![1.0 / k as f64; k],
            means: vec![vec![0.0; d]; k],
            covariances: None,
            variances: Some(vec![vec![1.0; d]; k]),
        };
        let err = Gmm::from_spec(many).unwrap_err().to_string();
        assert!(err.contains("GiB"), "{err}");
    }
}
