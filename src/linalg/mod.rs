//! Small dense f64 linear algebra for the exact references (Gaussian-mixture posteriors,
//! operator matrices). Sizes here are the data dimension d (up to a few thousand), so simple
//! O(d^3) algorithms in f64 are the right tool: exact enough and dependency-free.

use crate::error::{Error, Result};

mod eigen;
pub use eigen::{right_singular, sym_eigen, sym_eigen_desc};

/// A row-major dense matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Mat {
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = 1.0;
        }
        m
    }

    pub fn from_diag(diag: &[f64]) -> Self {
        let n = diag.len();
        let mut m = Self::zeros(n, n);
        for (i, v) in diag.iter().enumerate() {
            m.data[i * n + i] = *v;
        }
        m
    }

    pub fn from_rows(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(rows * cols, data.len());
        Self { rows, cols, data }
    }

    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.cols + j] = v;
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn transpose(&self) -> Mat {
        let mut t = Mat::zeros(self.cols, self.rows);
        for i in 0..self.rows {
            for j in 0..self.cols {
                t.data[j * self.rows + i] = self.data[i * self.cols + j];
            }
        }
        t
    }

    pub fn matmul(&self, other: &Mat) -> Mat {
        assert_eq!(self.cols, other.rows, "matmul shapes");
        let mut out = Mat::zeros(self.rows, other.cols);
        for i in 0..self.rows {
            let out_row = &mut out.data[i * other.cols..(i + 1) * other.cols];
            for k in 0..self.cols {
                let a = self.data[i * self.cols + k];
                if a == 0.0 {
                    continue;
                }
                let b_row = &other.data[k * other.cols..(k + 1) * other.cols];
                for (o, b) in out_row.iter_mut().zip(b_row) {
                    *o += a * b;
                }
            }
        }
        out
    }

    pub fn matvec(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(self.cols, v.len(), "matvec shapes");
        (0..self.rows).map(|i| dot(self.row(i), v)).collect()
    }

    /// Aᵀ v without forming the transpose.
    pub fn tmatvec(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(self.rows, v.len(), "tmatvec shapes");
        let mut out = vec![0.0; self.cols];
        for (i, vi) in v.iter().enumerate() {
            for (o, a) in out.iter_mut().zip(self.row(i)) {
                *o += a * vi;
            }
        }
        out
    }

    pub fn add(&self, other: &Mat) -> Mat {
        assert_eq!((self.rows, self.cols), (other.rows, other.cols));
        Mat {
            rows: self.rows,
            cols: self.cols,
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| a + b)
                .collect(),
        }
    }

    pub fn scale(&self, s: f64) -> Mat {
        Mat {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|a| a * s).collect(),
        }
    }

    pub fn add_diag(&self, s: f64) -> Mat {
        let mut m = self.clone();
        for i in 0..self.rows.min(self.cols) {
            m.data[i * self.cols + i] += s;
        }
        m
    }

    /// (M + Mᵀ)/2: removes the rounding asymmetry of products such as S A Aᵀ.
    pub fn symmetrize(&self) -> Mat {
        let mut m = self.clone();
        for i in 0..self.rows {
            for j in 0..i {
                let v = 0.5 * (self.at(i, j) + self.at(j, i));
                m.set(i, j, v);
                m.set(j, i, v);
            }
        }
        m
    }

    pub fn max_abs_diff(&self, other: &Mat) -> f64 {
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Lower Cholesky factor L with L Lᵀ = A of a symmetric positive definite matrix.
#[derive(Debug, Clone)]
pub struct Cholesky {
    pub l: Mat,
}

impl Cholesky {
    pub fn new(a: &Mat, what: &str) -> Result<Self> {
        let n = a.rows;
        if a.cols != n {
            return Err(Error::invalid(
                what,
                format!("matrix is {}x{}, not square", a.rows, a.cols),
            ));
        }
        let mut l = Mat::zeros(n, n);
        for j in 0..n {
            let mut d = a.at(j, j);
            for k in 0..j {
                d -= l.at(j, k) * l.at(j, k);
            }
            if !(d > 0.0) || !d.is_finite() {
                return Err(Error::invalid(
                    what,
                    "matrix is not symmetric positive definite",
                ));
            }
            let djj = d.sqrt();
            l.set(j, j, djj);
            for i in j + 1..n {
                let mut s = a.at(i, j);
                for k in 0..j {
                    s -= l.at(i, k) * l.at(j, k);
                }
                l.set(i, j, s / djj);
            }
        }
        Ok(Self { l })
    }

    /// The factor of a diagonal matrix with positive entries (no O(d³) work).
    pub fn diagonal(diag: &[f64]) -> Self {
        Self {
            l: Mat::from_diag(&diag.iter().map(|v| v.sqrt()).collect::<Vec<_>>()),
        }
    }

    pub fn log_det(&self) -> f64 {
        (0..self.l.rows).map(|i| self.l.at(i, i).ln()).sum::<f64>() * 2.0
    }

    /// Solves L z = b.
    pub fn solve_lower(&self, b: &[f64]) -> Vec<f64> {
        let n = self.l.rows;
        let mut z = b.to_vec();
        for i in 0..n {
            let row = self.l.row(i);
            let s = dot(&row[..i], &z[..i]);
            z[i] = (z[i] - s) / row[i];
        }
        z
    }

    /// Solves Lᵀ x = z.
    pub fn solve_upper(&self, z: &[f64]) -> Vec<f64> {
        let n = self.l.rows;
        let mut x = z.to_vec();
        for i in (0..n).rev() {
            let mut s = x[i];
            for k in i + 1..n {
                s -= self.l.at(k, i) * x[k];
            }
            x[i] = s / self.l.at(i, i);
        }
        x
    }

    /// Solves A x = b.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        self.solve_upper(&self.solve_lower(b))
    }

    /// A⁻¹, column by column.
    pub fn inverse(&self) -> Mat {
        let n = self.l.rows;
        let mut inv = Mat::zeros(n, n);
        let mut e = vec![0.0; n];
        for j in 0..n {
            e.iter_mut().for_each(|v| *v = 0.0);
            e[j] = 1.0;
            let col = self.solve(&e);
            for i in 0..n {
                inv.set(i, j, col[i]);
            }
        }
        inv.symmetrize()
    }

    /// L v: maps standard normal draws to draws with covariance A.
    pub fn mul_l(&self, v: &[f64]) -> Vec<f64> {
        let n = self.l.rows;
        (0..n)
            .map(|i| dot(&self.l.row(i)[..=i], &v[..=i]))
            .collect()
    }
}

/// log Σ exp(v), stable.
pub fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Normalised weights from log-weights via log-sum-exp.
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|l| (l - lse).exp()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn spd(n: usize) -> Mat {
        let mut b = Mat::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                b.set(
                    i,
                    j,
                    ((i * 7 + j * 3) % 5) as f64 - 2.0 + if i == j { 0.5 } else { 0.0 },
                );
            }
        }
        b.matmul(&b.transpose()).add_diag(0.1)
    }

    #[test]
    fn cholesky_solves_and_inverts() {
        let a = spd(6);
        let ch = Cholesky::new(&a, "test").unwrap();
        let x: Vec<f64> = (0..6).map(|i| i as f64 - 2.5).collect();
        let b = a.matvec(&x);
        let sol = ch.solve(&b);
        for (s, t) in sol.iter().zip(&x) {
            assert!((s - t).abs() < 1e-9);
        }
        let inv = ch.inverse();
        assert!(inv.matmul(&a).max_abs_diff(&Mat::identity(6)) < 1e-9);
    }

    #[test]
    fn not_spd_is_an_error() {
        let a = Mat::from_rows(2, 2, vec![1.0, 2.0, 2.0, 1.0]);
        assert!(Cholesky::new(&a, "m").is_err());
    }

    #[test]
    fn lse_is_stable() {
        let v = [1000.0, 1000.0];
        assert!((log_sum_exp(&v) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        let w = softmax(&[-1e4, 0.0]);
        assert!(w[1] > 0.999999 && w[0] >= 0.0);
    }
}
