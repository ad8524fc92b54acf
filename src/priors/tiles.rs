//! Overlapping tiles for any-size (patch) network priors on large pictures.
//!
//! D(x) = Σ_p P_pᵀ(w_p ⊙ D(P_p x)) / Σ_p P_pᵀ w_p: the picture is cut into tiles of a fixed
//! size that overlap, each tile is denoised (many tiles per network call, as a batch), and the
//! outputs are cross-faded with separable linear ramps over the overlaps, so no seam shows. The
//! noise stays the picture's own (the samplers draw it on the whole picture), so the tiles share
//! it. Why tiles rather than the whole picture at once: memory stays bounded by the tile batch
//! whatever the size (a 4096² photo on a GPU), and the network's GroupNorm statistics are taken
//! over a region the size of its training patches instead of a whole photo.
//!
//! Two equal implementations: on host buffers (no autodiff; also gives the VJP for the CPU
//! path) and with burn ops (when x carries autodiff, so gradients flow through the tiles).

use super::Pullback;
use crate::error::Result;
use crate::tensor;
use burn::tensor::Tensor;

/// Tile size and overlap in pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tiling {
    pub tile: usize,
    pub overlap: usize,
}

/// How many tiles one network call gets at most: enough to keep every CPU core busy, and
/// many more on a GPU, where small batches waste it (memory: ~this many 48² images).
fn max_tiles_per_call(device: &burn::tensor::Device) -> usize {
    if *device == burn::tensor::Device::flex() {
        64
    } else {
        512
    }
}

impl Default for Tiling {
    /// Chosen by `posterior-lab bench --tiles` (docs/photo-table.md): on a held-out 256² photo
    /// the photo prior (trained on 32² patches) denoises 48-pixel tiles better than the whole
    /// picture (+0.4 dB at σ 0.05 and 0.2, +2.0 dB at σ 1) and 3× faster (tiles are a batch
    /// the cores share); 32-pixel tiles gain 0.1 dB more at σ 1 for 25% more time.
    fn default() -> Self {
        Self {
            tile: 48,
            overlap: 12,
        }
    }
}

impl Tiling {
    /// The tile layout for an H×W picture, or None when one tile covers it (no tiling).
    pub fn plan(&self, h: usize, w: usize) -> Option<Plan> {
        if h <= self.tile && w <= self.tile {
            return None;
        }
        let overlap = self.overlap.min(self.tile / 2);
        let axis = |n: usize| {
            let t = self.tile.min(n);
            let starts = starts(n, t, overlap);
            let ramps: Vec<Vec<f32>> = (0..starts.len())
                .map(|i| ramp(t, overlap, i > 0, i + 1 < starts.len()))
                .collect();
            (t, starts, ramps)
        };
        let (th, ys, wy) = axis(h);
        let (tw, xs, wx) = axis(w);
        let mut norm = vec![0.0f32; h * w];
        for (y0, ry) in ys.iter().zip(&wy) {
            for (x0, rx) in xs.iter().zip(&wx) {
                for i in 0..th {
                    for j in 0..tw {
                        norm[(y0 + i) * w + x0 + j] += ry[i] * rx[j];
                    }
                }
            }
        }
        let inv_norm = norm.into_iter().map(|n| 1.0 / n).collect();
        Some(Plan {
            h,
            w,
            th,
            tw,
            ys,
            xs,
            wy,
            wx,
            inv_norm,
        })
    }
}

/// Tile starts along an axis of length n: a stride of t − overlap, the last one flush with
/// the end (so it may overlap its neighbour more).
fn starts(n: usize, t: usize, overlap: usize) -> Vec<usize> {
    if n <= t {
        return vec![0];
    }
    let stride = (t - overlap).max(1);
    let mut s: Vec<usize> = (0..)
        .map(|k| k * stride)
        .take_while(|p| p + t < n)
        .collect();
    s.push(n - t);
    s
}

/// Blending weights across one tile: 1 inside, a linear ramp over `overlap` pixels on each side
/// that has a neighbour (never 0, so every pixel is covered with a positive weight).
fn ramp(t: usize, overlap: usize, left: bool, right: bool) -> Vec<f32> {
    let o = (overlap + 1) as f32;
    (0..t)
        .map(|i| {
            let mut v = 1.0f32;
            if left {
                v = v.min((i + 1) as f32 / o);
            }
            if right {
                v = v.min((t - i) as f32 / o);
            }
            v
        })
        .collect()
}

/// One picture size's tiles and blending weights. Tile batches are position-major: the tile
/// at position p of image k is batch row p·B + k.
#[derive(Clone)]
pub struct Plan {
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
    ys: Vec<usize>,
    xs: Vec<usize>,
    wy: Vec<Vec<f32>>,
    wx: Vec<Vec<f32>>,
    /// 1 / Σ_p P_pᵀ w_p per pixel.
    inv_norm: Vec<f32>,
}

impl Plan {
    pub fn tiles(&self) -> usize {
        self.ys.len() * self.xs.len()
    }

    pub fn tile_shape(&self) -> [usize; 2] {
        [self.th, self.tw]
    }

    /// Where the tiles start, down and across.
    pub fn starts(&self) -> (&[usize], &[usize]) {
        (&self.ys, &self.xs)
    }

    /// (row start, column start, weight row, weight column) of every position.
    fn positions(&self) -> impl Iterator<Item = (usize, usize, &[f32], &[f32])> {
        self.ys.iter().zip(&self.wy).flat_map(move |(y0, ry)| {
            self.xs
                .iter()
                .zip(&self.wx)
                .map(move |(x0, rx)| (*y0, *x0, ry.as_slice(), rx.as_slice()))
        })
    }

    /// The positions of one chunk (indices in [`Plan::positions`]' row-major order).
    fn positions_in<'a>(
        &'a self,
        chunk: &'a [usize],
    ) -> impl Iterator<Item = (usize, usize, &'a [f32], &'a [f32])> + 'a {
        let nx = self.xs.len();
        chunk.iter().map(move |p| {
            let (iy, ix) = (p / nx, p % nx);
            (
                self.ys[iy],
                self.xs[ix],
                self.wy[iy].as_slice(),
                self.wx[ix].as_slice(),
            )
        })
    }

    /// Positions in chunks such that one chunk holds at most [`max_tiles_per_call`] tiles for
    /// a batch of b pictures (at least one position): every position, or only those whose
    /// tile holds a pixel of `needed` (an H×W map).
    fn chunks(
        &self,
        b: usize,
        device: &burn::tensor::Device,
        needed: Option<&[bool]>,
    ) -> Vec<Vec<usize>> {
        let per = (max_tiles_per_call(device) / b.max(1)).max(1);
        let chosen: Vec<usize> = match needed {
            None => (0..self.tiles()).collect(),
            Some(m) => self.tiles_touching(m),
        };
        chosen.chunks(per).map(<[usize]>::to_vec).collect()
    }

    /// The positions whose tile holds at least one pixel of `needed` (an H×W map; a map of
    /// another size counts every pixel as needed).
    pub fn tiles_touching(&self, needed: &[bool]) -> Vec<usize> {
        let (th, tw, w) = (self.th, self.tw, self.w);
        if needed.len() != self.h * w {
            return (0..self.tiles()).collect();
        }
        // Running counts per row make each tile's test O(th) instead of O(th·tw).
        let mut prefix = vec![0u32; self.h * (w + 1)];
        for i in 0..self.h {
            for j in 0..w {
                let here = u32::from(needed[i * w + j]);
                prefix[i * (w + 1) + j + 1] = prefix[i * (w + 1) + j] + here;
            }
        }
        let nx = self.xs.len();
        (0..self.tiles())
            .filter(|p| {
                let (y0, x0) = (self.ys[p / nx], self.xs[p % nx]);
                (y0..y0 + th).any(|i| prefix[i * (w + 1) + x0 + tw] > prefix[i * (w + 1) + x0])
            })
            .collect()
    }

    /// The tiles of positions `chunk` of x ([b, c, H, W] host buffer), position-major.
    fn cut(&self, x: &[f32], b: usize, c: usize, chunk: &[usize]) -> Vec<f32> {
        let (th, tw, w, hw) = (self.th, self.tw, self.w, self.h * self.w);
        let mut out = Vec::with_capacity(chunk.len() * b * c * th * tw);
        for (y0, x0, _, _) in self.positions_in(chunk) {
            for k in 0..b {
                for ch in 0..c {
                    let img = &x[(k * c + ch) * hw..][..hw];
                    for i in 0..th {
                        out.extend_from_slice(&img[(y0 + i) * w + x0..][..tw]);
                    }
                }
            }
        }
        out
    }

    /// The tiles of positions `chunk` of x as one network batch, multiplied by their blending
    /// weights when `weighted` (the pullback's cotangents).
    fn tile_batch(
        &self,
        x: &[f32],
        [b, c]: [usize; 2],
        chunk: &[usize],
        weighted: bool,
        device: &burn::tensor::Device,
    ) -> Tensor<4> {
        let mut tiles = self.cut(x, b, c, chunk);
        if weighted {
            self.weigh(&mut tiles, b, c, chunk);
        }
        tensor::from_vec(tiles, [chunk.len() * b, c, self.th, self.tw], device)
    }

    /// Adds Σ_p P_pᵀ(s_p ⊙ tiles_p) into `acc`, with s_p the tile's weights (`weighted`) or 1.
    fn paste(
        &self,
        acc: &mut [f32],
        tiles: &[f32],
        b: usize,
        c: usize,
        chunk: &[usize],
        weighted: bool,
    ) {
        let (th, tw, w, hw) = (self.th, self.tw, self.w, self.h * self.w);
        let per_tile = c * th * tw;
        for (n, (y0, x0, ry, rx)) in self.positions_in(chunk).enumerate() {
            for k in 0..b {
                let t = &tiles[(n * b + k) * per_tile..][..per_tile];
                for ch in 0..c {
                    let img = &mut acc[(k * c + ch) * hw..][..hw];
                    for i in 0..th {
                        let row = &mut img[(y0 + i) * w + x0..][..tw];
                        let src = &t[(ch * th + i) * tw..][..tw];
                        if weighted {
                            for j in 0..tw {
                                row[j] += ry[i] * rx[j] * src[j];
                            }
                        } else {
                            for j in 0..tw {
                                row[j] += src[j];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Multiplies every pixel of every image by 1 / Σ w.
    fn normalise(&self, v: &mut [f32]) {
        let hw = self.h * self.w;
        for img in v.chunks_mut(hw) {
            for (a, s) in img.iter_mut().zip(&self.inv_norm) {
                *a *= s;
            }
        }
    }

    /// The tiled D(x) with `f` the denoiser of a batch of tiles. Uses host buffers, or burn ops
    /// when x carries autodiff.
    pub fn denoise(&self, x: Tensor<4>, f: impl Fn(Tensor<4>) -> Tensor<4>) -> Result<Tensor<4>> {
        if x.is_autodiff() {
            return Ok(self.denoise_graph(x, f));
        }
        let c = x.dims()[1];
        self.denoise_channels(x, c, f)
    }

    /// The tiled f(x) for an `f` that maps tiles of x's channels to `out` channels (EPS's
    /// denoiser reads μ⋆ and the observation, and returns an image); host buffers only.
    pub fn denoise_channels(
        &self,
        x: Tensor<4>,
        out: usize,
        f: impl Fn(Tensor<4>) -> Tensor<4>,
    ) -> Result<Tensor<4>> {
        self.denoise_where(x, out, None, f)
    }

    /// The tiled f(x) evaluated only on the tiles that hold a pixel of `needed` (an H×W map;
    /// None: every tile). Every needed pixel gets exactly the value of the whole evaluation,
    /// since each tile covering it is evaluated; the other pixels' values are unspecified (the
    /// caller replaces them). This is what lets a restoration of a few holes in a large photo
    /// cost the holes' tiles instead of the whole picture's.
    pub fn denoise_where(
        &self,
        x: Tensor<4>,
        out: usize,
        needed: Option<&[bool]>,
        f: impl Fn(Tensor<4>) -> Tensor<4>,
    ) -> Result<Tensor<4>> {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let xv = tensor::to_vec(&x)?;
        let mut acc = vec![0.0f32; b * out * h * w];
        for chunk in self.chunks(b, &device, needed) {
            let tiles = self.tile_batch(&xv, [b, c], &chunk, false, &device);
            let d = tensor::to_vec(&f(tiles))?;
            self.paste(&mut acc, &d, b, out, &chunk, true);
        }
        self.normalise(&mut acc);
        Ok(tensor::from_vec(acc, [b, out, h, w], &device))
    }

    /// The tiled D(x) and its pullback from the tiles' own: v ↦ Σ_p P_pᵀ J_pᵀ(w_p ⊙ P_p(v/N)).
    /// None when `f` has no pullback for a chunk.
    pub fn denoise_vjp(
        &self,
        x: &Tensor<4>,
        f: impl Fn(&Tensor<4>) -> Option<(Tensor<4>, Pullback)>,
    ) -> Option<(Tensor<4>, Pullback)> {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let xv = tensor::to_vec(x).ok()?;
        let mut acc = vec![0.0f32; b * c * h * w];
        let mut pullbacks = Vec::new();
        for chunk in self.chunks(b, &device, None) {
            let tiles = self.tile_batch(&xv, [b, c], &chunk, false, &device);
            let (d, pb) = f(&tiles)?;
            let d = tensor::to_vec(&d).ok()?;
            self.paste(&mut acc, &d, b, c, &chunk, true);
            pullbacks.push((chunk, pb));
        }
        self.normalise(&mut acc);
        let out = tensor::from_vec(acc, [b, c, h, w], &device);
        let plan = self.clone();
        let pullback: Pullback = Box::new(move |v: Tensor<4>| {
            let mut vv = tensor::to_vec(&v)?;
            plan.normalise(&mut vv);
            let mut grad = vec![0.0f32; b * c * h * w];
            for (chunk, pb) in pullbacks {
                let cot = plan.tile_batch(&vv, [b, c], &chunk, true, &device);
                let g = tensor::to_vec(&pb(cot)?)?;
                plan.paste(&mut grad, &g, b, c, &chunk, false);
            }
            Ok(tensor::from_vec(grad, [b, c, h, w], &device))
        });
        Some((out, pullback))
    }

    /// Multiplies cut tiles by their weights.
    fn weigh(&self, tiles: &mut [f32], b: usize, c: usize, chunk: &[usize]) {
        let (th, tw) = (self.th, self.tw);
        let per_tile = c * th * tw;
        for (n, (_, _, ry, rx)) in self.positions_in(chunk).enumerate() {
            for t in tiles[n * b * per_tile..][..b * per_tile].chunks_mut(th * tw) {
                for i in 0..th {
                    for j in 0..tw {
                        t[i * tw + j] *= ry[i] * rx[j];
                    }
                }
            }
        }
    }

    /// The same blend with burn ops (slices, concatenation, slice_assign), for x with autodiff.
    fn denoise_graph(&self, x: Tensor<4>, f: impl Fn(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let (th, tw) = (self.th, self.tw);
        let positions: Vec<_> = self.positions().collect();
        let mut acc = Tensor::<4>::zeros([b, c, h, w], &device);
        for chunk in self.chunks(b, &device, None) {
            let tiles: Vec<Tensor<4>> = chunk
                .iter()
                .map(|p| &positions[*p])
                .map(|(y0, x0, _, _)| x.clone().slice([0..b, 0..c, *y0..y0 + th, *x0..x0 + tw]))
                .collect();
            let d = f(Tensor::cat(tiles, 0));
            for (n, (y0, x0, ry, rx)) in chunk.iter().map(|p| &positions[*p]).enumerate() {
                let weights: Vec<f32> = ry
                    .iter()
                    .flat_map(|a| rx.iter().map(move |v| a * v))
                    .collect();
                let wt = tensor::from_vec(weights, [1, 1, th, tw], &device);
                let part = d.clone().narrow(0, n * b, b) * wt;
                let region = [0..b, 0..c, *y0..y0 + th, *x0..x0 + tw];
                let cur = acc.clone().slice(region.clone());
                acc = acc.slice_assign(region, cur + part);
            }
        }
        let inv = tensor::from_vec(self.inv_norm.clone(), [1, 1, h, w], &device);
        acc * inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_every_pixel_and_blend_to_one() {
        let t = Tiling {
            tile: 16,
            overlap: 4,
        };
        for (h, w) in [(40, 23), (16, 33), (17, 17), (100, 64)] {
            let p = t.plan(h, w).unwrap();
            assert_eq!(p.ys.last().map(|y| y + p.th), Some(h));
            assert_eq!(p.xs.last().map(|x| x + p.tw), Some(w));
            assert!(p.inv_norm.iter().all(|v| v.is_finite() && *v > 0.0));
        }
        assert!(t.plan(16, 16).is_none());
    }

    /// With the identity as the tile denoiser the blend returns x exactly, on both paths, and
    /// the host pullback is the identity too.
    #[test]
    fn identity_tiles_give_back_the_picture() {
        let device = burn::tensor::Device::flex();
        let t = Tiling {
            tile: 8,
            overlap: 3,
        };
        let p = t.plan(13, 21).unwrap();
        let x = tensor::normal(&mut tensor::rng(1), [2, 3, 13, 21], &device);
        let xv = tensor::to_vec(&x).unwrap();
        let host = tensor::to_vec(&p.denoise(x.clone(), |t| t).unwrap()).unwrap();
        let graph = tensor::to_vec(&p.denoise_graph(x.clone(), |t| t)).unwrap();
        let (d, pb) = p
            .denoise_vjp(&x, |t| Some((t.clone(), Box::new(Ok) as Pullback)))
            .unwrap();
        let back = tensor::to_vec(&pb(x.clone()).unwrap()).unwrap();
        let d = tensor::to_vec(&d).unwrap();
        for i in 0..xv.len() {
            assert!((host[i] - xv[i]).abs() < 1e-5);
            assert!((graph[i] - xv[i]).abs() < 1e-5);
            assert!((d[i] - xv[i]).abs() < 1e-5);
            // The pullback of the identity blend: Σ_p P_pᵀ w_p P_p (v/N) = v.
            assert!((back[i] - xv[i]).abs() < 1e-5);
        }
    }

    /// A pointwise tile map f(t) = t² blends back to x² (tiles see the same pixels), and the
    /// pullback through the tiles is v ↦ 2x ⊙ v.
    #[test]
    fn the_pullback_goes_through_the_tiles() {
        let device = burn::tensor::Device::flex();
        let p = Tiling {
            tile: 8,
            overlap: 2,
        }
        .plan(19, 11)
        .unwrap();
        let mut rng = tensor::rng(2);
        let x = tensor::normal(&mut rng, [3, 1, 19, 11], &device);
        let v = tensor::normal(&mut rng, [3, 1, 19, 11], &device);
        let (d, pb) = p
            .denoise_vjp(&x, |t| {
                let t = t.clone();
                let d = x_sq(&t);
                let pb: Pullback = Box::new(move |v| Ok(v * t.mul_scalar(2.0)));
                Some((d, pb))
            })
            .unwrap();
        let (xv, vv) = (tensor::to_vec(&x).unwrap(), tensor::to_vec(&v).unwrap());
        let d = tensor::to_vec(&d).unwrap();
        let g = tensor::to_vec(&pb(v).unwrap()).unwrap();
        for i in 0..xv.len() {
            assert!((d[i] - xv[i] * xv[i]).abs() < 1e-4);
            assert!((g[i] - 2.0 * xv[i] * vv[i]).abs() < 1e-4);
        }
    }

    /// Evaluating only the tiles that hold a needed pixel gives every needed pixel exactly the
    /// whole evaluation's value, for a map that mixes each tile's pixels (its mean), and skips
    /// the tiles away from them.
    #[test]
    fn needed_pixels_get_the_whole_value_from_their_tiles_alone() {
        let device = burn::tensor::Device::flex();
        let (h, w) = (40, 70);
        let p = Tiling {
            tile: 12,
            overlap: 4,
        }
        .plan(h, w)
        .unwrap();
        let x = tensor::normal(&mut tensor::rng(3), [2, 3, h, w], &device);
        let f = |t: Tensor<4>| {
            let [n, c, th, tw] = t.dims();
            let mean = t.clone().mean_dim(3).mean_dim(2).expand([n, c, th, tw]);
            x_sq(&t) + mean
        };
        let mut needed = vec![false; h * w];
        for (y, x) in [(3, 5), (20, 33), (21, 34), (39, 69)] {
            needed[y * w + x] = true;
        }
        let touched = p.tiles_touching(&needed).len();
        assert!(
            touched > 0 && touched < p.tiles() / 2,
            "{touched} of {}",
            p.tiles()
        );
        let whole = tensor::to_vec(&p.denoise(x.clone(), f).unwrap()).unwrap();
        let part = tensor::to_vec(&p.denoise_where(x, 3, Some(&needed), f).unwrap()).unwrap();
        for img in 0..6 {
            for (k, n) in needed.iter().enumerate() {
                let i = img * h * w + k;
                if *n {
                    assert!(
                        (whole[i] - part[i]).abs() < 1e-5,
                        "{} vs {}",
                        whole[i],
                        part[i]
                    );
                }
            }
        }
    }

    fn x_sq(t: &Tensor<4>) -> Tensor<4> {
        t.clone() * t.clone()
    }
}
