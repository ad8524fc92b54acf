//! Symmetric eigendecompositions: cyclic Jacobi (the exact references, small d) and
//! Householder + implicit QL (the chains×chains Gram matrices of posterior PCA), and the thin
//! SVD built on them.

use super::Mat;

/// Symmetric eigendecomposition A = U diag(λ) Uᵀ by cyclic Jacobi rotations.
/// Returns (λ, U) with U's columns the eigenvectors.
pub fn sym_eigen(a: &Mat) -> (Vec<f64>, Mat) {
    let n = a.rows;
    let mut m = a.symmetrize();
    let mut u = Mat::identity(n);
    let scale: f64 = m.data.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
    for _sweep in 0..100 {
        let mut off = 0.0;
        for i in 0..n {
            for j in 0..i {
                off += m.at(i, j) * m.at(i, j);
            }
        }
        if off.sqrt() <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m.at(p, q);
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let app = m.at(p, p);
                let aqq = m.at(q, q);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let mkp = m.at(k, p);
                    let mkq = m.at(k, q);
                    m.set(k, p, c * mkp - s * mkq);
                    m.set(k, q, s * mkp + c * mkq);
                }
                for k in 0..n {
                    let mpk = m.at(p, k);
                    let mqk = m.at(q, k);
                    m.set(p, k, c * mpk - s * mqk);
                    m.set(q, k, s * mpk + c * mqk);
                }
                for k in 0..n {
                    let ukp = u.at(k, p);
                    let ukq = u.at(k, q);
                    u.set(k, p, c * ukp - s * ukq);
                    u.set(k, q, s * ukp + c * ukq);
                }
            }
        }
    }
    let lambda = (0..n).map(|i| m.at(i, i)).collect();
    (lambda, u)
}

/// Symmetric eigendecomposition by Householder tridiagonalisation and the implicit QL method
/// (EISPACK tred2/tql2, as in JAMA): O(n³) with a small constant, for the chains×chains Gram
/// matrices of posterior PCA (n up to a few hundred). Returns (λ, U) sorted by λ descending,
/// U's columns the eigenvectors.
pub fn sym_eigen_desc(a: &Mat) -> (Vec<f64>, Mat) {
    let n = a.rows;
    if n == 0 {
        return (vec![], Mat::zeros(0, 0));
    }
    let mut v = a.symmetrize().data;
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tred2(n, &mut v, &mut d, &mut e);
    // The QL rotations mix columns of V: on its transpose they mix contiguous rows.
    let mut vt = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            vt[j * n + i] = v[i * n + j];
        }
    }
    tql2(n, &mut vt, &mut d, &mut e);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let mut u = Mat::zeros(n, n);
    for (new, &old) in order.iter().enumerate() {
        for k in 0..n {
            u.data[k * n + new] = vt[old * n + k];
        }
    }
    (order.iter().map(|&i| d[i]).collect(), u)
}

/// Householder reduction of the symmetric `v` (row-major n×n) to tridiagonal form: diagonal in
/// `d`, sub-diagonal in `e[1..]`, `v` becomes the accumulated transformation.
fn tred2(n: usize, v: &mut [f64], d: &mut [f64], e: &mut [f64]) {
    let at = |i: usize, j: usize| i * n + j;
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let mut scale = 0.0;
        let mut h = 0.0;
        for k in 0..i {
            scale += d[k].abs();
        }
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for k in 0..i {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for j in 0..i {
                e[j] = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[at(j, i)] = f;
                g = e[j] + v[at(j, j)] * f;
                for k in j + 1..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..n - 1 {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// Implicit QL iterations on the tridiagonal (d, e), accumulating into `vt`, the transpose of
/// the transformation (row i = eigenvector i).
fn tql2(n: usize, vt: &mut [f64], d: &mut [f64], e: &mut [f64]) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            // Converges in a few sweeps; the cap only guards against NaN input.
            for _iter in 0..64 {
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in d.iter_mut().take(n).skip(l + 2) {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let mut c = 1.0;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0;
                let mut s2 = 0.0;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (head, tail) = vt.split_at_mut((i + 1) * n);
                    let row_i = &mut head[i * n..];
                    let row_next = &mut tail[..n];
                    for (a, b) in row_i.iter_mut().zip(row_next.iter_mut()) {
                        let hk = *b;
                        *b = s * *a + c * hk;
                        *a = c * *a - s * hk;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if !(e[l].abs() > eps * tst1) {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

/// Thin SVD of an m x n matrix through the eigendecomposition of AᵀA: returns (s, V) with
/// A = U diag(s) Vᵀ, singular values sorted descending, V's columns the right singular vectors
/// (all n of them; s has n entries, zero past the rank). Householder + QL, so a photo's 1-D blur
/// matrices (n in the hundreds to a thousand) take a second, not the minutes Jacobi needs.
pub fn right_singular(a: &Mat) -> (Vec<f64>, Mat) {
    let ata = a.transpose().matmul(a);
    let (lambda, v) = sym_eigen_desc(&ata);
    (lambda.into_iter().map(|l| l.max(0.0).sqrt()).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::tests::spd;

    #[test]
    fn eigen_reconstructs() {
        let a = spd(7);
        let (l, u) = sym_eigen(&a);
        let rec = u.matmul(&Mat::from_diag(&l)).matmul(&u.transpose());
        assert!(rec.max_abs_diff(&a) < 1e-9);
        assert!(u.transpose().matmul(&u).max_abs_diff(&Mat::identity(7)) < 1e-12);
    }

    #[test]
    fn tridiagonal_eigen_matches_jacobi_and_handles_rank_deficiency() {
        for n in [1, 2, 7, 40] {
            let a = spd(n);
            let (l, u) = sym_eigen_desc(&a);
            let rec = u.matmul(&Mat::from_diag(&l)).matmul(&u.transpose());
            assert!(rec.max_abs_diff(&a) < 1e-9 * (1.0 + l[0]), "n {n}");
            assert!(u.transpose().matmul(&u).max_abs_diff(&Mat::identity(n)) < 1e-12);
            assert!(l.windows(2).all(|w| w[0] >= w[1]), "sorted descending");
            let (mut lj, _) = sym_eigen(&a);
            lj.sort_by(|a, b| b.total_cmp(a));
            for (x, y) in l.iter().zip(&lj) {
                assert!((x - y).abs() < 1e-9 * (1.0 + l[0]), "{x} vs {y}");
            }
        }
        // A centred Gram matrix has rank n − 1: one zero eigenvalue, the constant vector.
        let n = 5;
        let mut g = Mat::from_diag(&[1.0; 5]).add(&Mat::from_rows(n, n, vec![-0.2; 25]));
        g = g.scale(3.0);
        let (l, u) = sym_eigen_desc(&g);
        assert!(l[4].abs() < 1e-12 && (l[0] - 3.0).abs() < 1e-12);
        for k in 0..n {
            assert!((u.at(k, 4).abs() - (1.0 / 5f64.sqrt())).abs() < 1e-9);
        }
    }
}
