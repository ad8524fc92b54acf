//! A convolution of the CPU U-Net: forward, the backward pass with respect to its input, and
//! its weights' gradient. 3×3 stride-1 convolutions run the direct kernels (direct.rs) where the
//! CPU has them; the others, and every convolution elsewhere, im2col + GEMM in tiles of output
//! rows ([`row_tiles`]).

use super::direct::{self, Padded};
use super::kernels::{col2im, columns, im2col, matmul_acc, matmul_new, row_tiles};
use super::layers::Act;

/// A convolution as a [out, in·k·k] matrix, zero padding k/2. Build it with [`Conv::new`] and
/// leave its weights as they are: the direct kernels keep packed copies of them.
#[derive(Debug)]
pub struct Conv {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub i: usize,
    pub o: usize,
    pub k: usize,
    pub stride: usize,
    /// Offset of the weights' gradient in a flat gradient buffer (the bias's follows).
    pub g: usize,
    /// For the direct kernels: the weights packed for the forward pass and for ∂x.
    direct: Option<(Vec<f32>, Vec<f32>)>,
}

/// Cores a GEMM over n output pixels may use: at 28×28 and 64×64 splitting one was measured
/// slower than not.
fn gemm_threads(threads: usize, n: usize) -> usize {
    if n >= 128 * 128 { threads } else { 1 }
}

impl Conv {
    /// A convolution with weights [o, i, k, k], zero padding k/2.
    pub fn new(
        w: Vec<f32>,
        b: Vec<f32>,
        (i, o, k): (usize, usize, usize),
        stride: usize,
        g: usize,
    ) -> Self {
        let direct = (k == 3 && stride == 1 && direct::available())
            .then(|| (direct::pack(&w, o, i), direct::pack_back(&w, o, i)));
        Self {
            w,
            b,
            i,
            o,
            k,
            stride,
            g,
            direct,
        }
    }

    /// The same convolution without the direct kernels (tests compare the two paths).
    #[cfg(test)]
    pub fn im2col_only(mut self) -> Self {
        self.direct = None;
        self
    }

    pub(super) fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let (k, s, pad) = (self.k, self.stride, self.k / 2);
        ((h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1)
    }

    /// out = W · im2col(x) + b, in tiles of output rows ([`row_tiles`]).
    pub fn apply(&self, x: &Act, threads: usize) -> Act {
        if let Some((pack, _)) = &self.direct {
            let x = Padded::with_threads(x, threads);
            return direct::conv3x3(&x, pack, Some(&self.b), self.o, threads);
        }
        let (ho, wo) = self.out_size(x.h, x.w);
        let n = ho * wo;
        let threads = gemm_threads(threads, n);
        let kk = self.i * self.k * self.k;
        let mut out = Vec::with_capacity(self.o * n);
        for b in &self.b {
            out.extend(std::iter::repeat_n(*b, n));
        }
        if self.k == 1 && self.stride == 1 {
            matmul_acc(
                &mut out,
                (&self.w, kk, 1),
                (&x.v, n, 1),
                self.o,
                n,
                kk,
                threads,
            );
        } else {
            let mut col = vec![];
            let mut tile = vec![];
            for (rows, px) in row_tiles(kk, wo, ho) {
                im2col(x, self.k, self.stride, wo, rows, &mut col);
                let tn = px.len();
                // One tile: straight into the output; several: each into its columns.
                let dst = if tn == n {
                    &mut out
                } else {
                    tile.clear();
                    tile.extend(self.b.iter().flat_map(|b| std::iter::repeat_n(*b, tn)));
                    &mut tile
                };
                matmul_acc(
                    dst,
                    (&self.w, kk, 1),
                    (&col, tn, 1),
                    self.o,
                    tn,
                    kk,
                    threads,
                );
                if tn < n {
                    for (o, t) in tile.chunks_exact(tn).enumerate() {
                        out[o * n + px.start..o * n + px.end].copy_from_slice(t);
                    }
                }
            }
        }
        Act {
            c: self.o,
            h: ho,
            w: wo,
            v: out,
        }
    }

    /// ∂/∂x of ⟨dy, conv(x)⟩ for an input of size h × w: col2im(Wᵀ dy), tile by tile.
    pub fn back(&self, dy: &Act, h: usize, w: usize, threads: usize) -> Act {
        if let Some((_, pack)) = &self.direct {
            debug_assert!((dy.h, dy.w) == (h, w));
            let dy = Padded::with_threads(dy, threads);
            return direct::conv3x3(&dy, pack, None, self.i, threads);
        }
        let n = dy.h * dy.w;
        let threads = gemm_threads(threads, n);
        let kk = self.i * self.k * self.k;
        // Wᵀ: element (r, o) at w[o·kk + r] → row stride 1, column stride kk.
        if self.k == 1 && self.stride == 1 {
            let dcol = matmul_new((&self.w, 1, kk), &dy.v, kk, n, self.o, threads);
            return Act {
                c: self.i,
                h,
                w,
                v: dcol,
            };
        }
        let mut dx = Act::zeros(self.i, h, w);
        for (rows, px) in row_tiles(kk, dy.w, dy.h) {
            let part = columns(&dy.v, n, px.clone());
            let dcol = matmul_new((&self.w, 1, kk), &part, kk, px.len(), self.o, threads);
            col2im(&dcol, &mut dx, self.k, self.stride, dy.w, rows);
        }
        dx
    }

    /// Adds ∂/∂W = dy · im2col(x)ᵀ and ∂/∂b = Σ dy into `g`, for the input x the forward pass
    /// saw: im2col is recomputed tile by tile (keeping it would take k² times the activations'
    /// memory).
    pub fn grad_params(&self, dy: &Act, x: &Act, threads: usize, g: &mut [f32]) {
        let n = dy.h * dy.w;
        let kk = self.i * self.k * self.k;
        let (gw, gb) = g[self.g..self.g + self.o * kk + self.o].split_at_mut(self.o * kk);
        for (o, b) in gb.iter_mut().enumerate() {
            *b += dy.v[o * n..(o + 1) * n].iter().sum::<f32>();
        }
        if self.direct.is_some() {
            direct::weight_grad(dy, &Padded::new(x), gw, threads);
            return;
        }
        let threads = gemm_threads(threads, n);
        // colᵀ as a k×n matrix (k = pixels): element (p, r) at col[r·tn + p].
        if self.k == 1 && self.stride == 1 {
            matmul_acc(gw, (&dy.v, n, 1), (&x.v, 1, n), self.o, kk, n, threads);
            return;
        }
        let mut col = vec![];
        for (rows, px) in row_tiles(kk, dy.w, dy.h) {
            im2col(x, self.k, self.stride, dy.w, rows, &mut col);
            let (part, tn) = (columns(&dy.v, n, px.clone()), px.len());
            matmul_acc(gw, (&part, tn, 1), (&col, 1, tn), self.o, kk, tn, threads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 → 3 channel convolution with weights cos(i·f) and its gradient at offset `g`.
    fn two_to_three(k: usize, stride: usize, f: f32, g: usize) -> Conv {
        Conv::new(
            (0..3 * 2 * k * k).map(|i| (i as f32 * f).cos()).collect(),
            vec![0.1, -0.2, 0.3],
            (2, 3, k),
            stride,
            g,
        )
    }

    #[test]
    fn conv_matches_a_direct_sum_and_its_back_is_the_adjoint() {
        let x = Act::pattern(2, 5, 4, 0.0);
        for (k, stride) in [(3, 1), (3, 2), (1, 1)] {
            let cv = two_to_three(k, stride, 0.11, 0);
            let out = cv.apply(&x, 1);
            let p = k / 2;
            for o in 0..3 {
                for oy in 0..out.h {
                    for ox in 0..out.w {
                        let mut want = cv.b[o];
                        for ci in 0..2 {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy = (oy * stride + ky) as isize - p as isize;
                                    let ix = (ox * stride + kx) as isize - p as isize;
                                    if (0..5).contains(&iy) && (0..4).contains(&ix) {
                                        want += cv.w[((o * 2 + ci) * k + ky) * k + kx]
                                            * x.v[(ci * 5 + iy as usize) * 4 + ix as usize];
                                    }
                                }
                            }
                        }
                        let got = out.v[(o * out.h + oy) * out.w + ox];
                        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                    }
                }
            }
            // ⟨dy, W x⟩ = ⟨Wᵀ dy, x⟩ (bias aside).
            let dy = Act::pattern(3, out.h, out.w, 3.0);
            let dx = cv.back(&dy, 5, 4, 1);
            let lin: f64 = Act::dot(&dy, &out)
                - (0..3)
                    .map(|o| {
                        f64::from(cv.b[o])
                            * dy.v[o * out.h * out.w..][..out.h * out.w]
                                .iter()
                                .map(|v| f64::from(*v))
                                .sum::<f64>()
                    })
                    .sum::<f64>();
            assert!((lin - Act::dot(&dx, &x)).abs() < 1e-4, "k {k} s {stride}");
        }
    }

    /// ⟨dy, conv_W(x)⟩ is linear in W and b: its gradient is what `grad_params` adds.
    #[test]
    fn conv_weight_gradient_matches_finite_differences() {
        let x = Act::pattern(2, 5, 6, 0.5);
        for (k, stride) in [(3, 1), (3, 2), (1, 1)] {
            let mut cv = two_to_three(k, stride, 0.13, 2);
            let (ho, wo) = cv.out_size(5, 6);
            let dy = Act::pattern(3, ho, wo, 4.0);
            // Rebuilt for each evaluation: the direct kernels' packs copy the weights.
            let f = |cv: &Conv| -> f64 {
                let cv = Conv::new(cv.w.clone(), cv.b.clone(), (2, 3, k), stride, 0);
                let out = cv.apply(&x, 1);
                out.v
                    .iter()
                    .zip(&dy.v)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum()
            };
            let nw = cv.w.len();
            let mut g = vec![0.0f32; 2 + nw + 3];
            cv.grad_params(&dy, &x, 1, &mut g);
            for j in 0..nw + 3 {
                let h = 0.01f32;
                let bump = |cv: &mut Conv, d: f32| {
                    if j < nw {
                        cv.w[j] += d
                    } else {
                        cv.b[j - nw] += d
                    }
                };
                bump(&mut cv, h);
                let up = f(&cv);
                bump(&mut cv, -2.0 * h);
                let down = f(&cv);
                bump(&mut cv, h);
                let fd = (up - down) / (2.0 * f64::from(h));
                let got = f64::from(g[2 + j]);
                assert!(
                    (fd - got).abs() < 1e-3 * (1.0 + fd.abs()),
                    "k {k} s {stride} #{j}: {fd} vs {got}"
                );
            }
        }
    }

    /// The direct kernels equal im2col + GEMM: forward, ∂x and ∂W, on odd sizes, channel
    /// counts that do not fill a register block, and split over threads.
    #[test]
    fn direct_convolution_equals_im2col() {
        if !direct::available() {
            return;
        }
        for (i, o, h, w, threads) in [
            (1, 16, 28, 28, 1),
            (3, 3, 5, 7, 1),
            (16, 1, 1, 1, 1),
            (5, 6, 9, 2, 2),
            (16, 32, 64, 40, 2),
        ] {
            let wts: Vec<f32> = (0..o * i * 9).map(|j| (j as f32 * 0.173).sin()).collect();
            let b: Vec<f32> = (0..o).map(|j| 0.1 * j as f32 - 0.2).collect();
            let fast = Conv::new(wts.clone(), b.clone(), (i, o, 3), 1, 0);
            let slow = Conv::new(wts, b, (i, o, 3), 1, 0).im2col_only();
            assert!(fast.direct.is_some());
            let x = Act::pattern(i, h, w, 0.3);
            let dy = Act::pattern(o, h, w, 1.7);
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len());
                let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                for (j, (p, q)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-5 * scale,
                        "{what} {i}->{o} {h}x{w} #{j}: {p} vs {q}"
                    );
                }
            };
            let (yf, ys) = (fast.apply(&x, threads), slow.apply(&x, threads));
            assert_eq!((yf.c, yf.h, yf.w), (ys.c, ys.h, ys.w));
            close(&yf.v, &ys.v, "forward");
            close(
                &fast.back(&dy, h, w, threads).v,
                &slow.back(&dy, h, w, threads).v,
                "dx",
            );
            let n = o * i * 9 + o;
            let (mut gf, mut gs) = (vec![0.5f32; n], vec![0.5f32; n]);
            fast.grad_params(&dy, &x, threads, &mut gf);
            slow.grad_params(&dy, &x, threads, &mut gs);
            close(&gf, &gs, "dW");
        }
    }
}
