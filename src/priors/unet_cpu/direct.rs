//! Direct 3×3 stride-1 convolutions on x86-64 with AVX2 and FMA: no im2col, no GEMM packing.
//!
//! The input is zero-padded into planes of (h+2)×(w+2). An output pixel p of the "wide"
//! picture (h rows of w+2 pixels, the last two of each row discarded) reads tap (ky, kx) at
//! p + ky·(w+2) + kx of every plane, so each tap is a contiguous run of pixels shifted by a
//! constant, and a block of 2 output channels × 48 pixels accumulates in twelve registers over
//! every input channel and tap. On 16–64 channel pictures of 7–64 pixels (the shipped U-Nets)
//! im2col, GEMM packing and the copies around them took as long as the GEMM kernel itself.
//!
//! The input gradient of a stride-1 convolution is the same convolution with its weights
//! transposed and flipped ([`pack_back`]); the weights' gradient is a dot product of the wide
//! output gradient with each tap's shifted run ([`weight_grad`]), again without im2col.

use super::layers::Act;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Output channels per register block.
const MR: usize = 2;
/// Vectors of 8 pixels per register block: MR·NR accumulators, NR pixel vectors and one
/// broadcast weight fit AVX2's sixteen registers (4 × 3 needed all sixteen and spilled).
const NR: usize = 6;
/// Floats after the last plane: the wide picture's last block reads up to 9 past it (up to 17
/// with the 16-lane kernels, whose bands round up to 16 pixels).
const SLACK: usize = 32;
/// Bytes of padded input a band of rows should keep within: a quarter of a 2 MB L2 (this
/// Xeon's; the 128 KB chosen on a Zen 3 kept 1-row bands at 128+ channels and re-read each
/// input row three times: the ffhq network's NFE 3.29 → 2.74 s, the photo U-Net's 16-image
/// NFE 54 → 38 ms with the AVX-512 kernels).
const ROWS_BUDGET: usize = 512 * 1024;

/// Whether this CPU runs the direct kernels (otherwise convolutions go through im2col + GEMM).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Weights [o, i, 3, 3] in blocks of [`MR`] output channels, [o/MR][i][9][MR], zero past o.
pub fn pack(w: &[f32], o: usize, i: usize) -> Vec<f32> {
    let mut p = vec![0.0; o.div_ceil(MR) * i * 9 * MR];
    for oc in 0..o {
        for ci in 0..i {
            for t in 0..9 {
                p[((oc / MR * i + ci) * 9 + t) * MR + oc % MR] = w[(oc * i + ci) * 9 + t];
            }
        }
    }
    p
}

/// The pack of the input gradient's convolution: ∂x[ci] = Σ_o flip(W[o, ci]) ⋆ dy[o], weights
/// [i, o, 3, 3] with w′[ci, o, t] = w[o, ci, 8 − t].
pub fn pack_back(w: &[f32], o: usize, i: usize) -> Vec<f32> {
    let mut t = vec![0.0; o * i * 9];
    for oc in 0..o {
        for ci in 0..i {
            for k in 0..9 {
                t[(ci * o + oc) * 9 + k] = w[(oc * i + ci) * 9 + 8 - k];
            }
        }
    }
    pack(&t, i, o)
}

/// A picture zero-padded by one pixel into planes of (h+2)×(w+2), with [`SLACK`] after them.
pub struct Padded {
    v: Vec<f32>,
    c: usize,
    h: usize,
    w: usize,
}

impl Padded {
    pub fn new(x: &Act) -> Self {
        let row = x.w + 2;
        // Written once in order: zero rows and columns around each plane's rows.
        let mut v = Vec::with_capacity(x.c * (x.h + 2) * row + SLACK);
        for plane in x.v.chunks_exact((x.h * x.w).max(1)) {
            v.extend(std::iter::repeat_n(0.0, row + 1));
            for src in plane.chunks_exact(x.w.max(1)) {
                v.extend_from_slice(src);
                v.extend_from_slice(&[0.0, 0.0]);
            }
            v.extend(std::iter::repeat_n(0.0, row - 1));
        }
        v.extend(std::iter::repeat_n(0.0, SLACK));
        Self {
            v,
            c: x.c,
            h: x.h,
            w: x.w,
        }
    }

    /// [`Padded::new`] with the planes filled by `threads` cores (a single large picture: the
    /// copy is a tenth of a wide convolution's time, and it was serial).
    pub fn with_threads(x: &Act, threads: usize) -> Self {
        if threads <= 1 || x.c < 2 {
            return Self::new(x);
        }
        let row = x.w + 2;
        let plane = (x.h + 2) * row;
        let mut v = vec![0.0f32; x.c * plane + SLACK];
        let hw = (x.h * x.w).max(1);
        v[..x.c * plane]
            .par_chunks_mut(plane)
            .zip(x.v.par_chunks(hw))
            .for_each(|(dst, src)| {
                for (y, s) in src.chunks_exact(x.w.max(1)).enumerate() {
                    dst[(y + 1) * row + 1..][..x.w].copy_from_slice(s);
                }
            });
        Self {
            v,
            c: x.c,
            h: x.h,
            w: x.w,
        }
    }

    fn row(&self) -> usize {
        self.w + 2
    }

    fn plane(&self) -> usize {
        (self.h + 2) * (self.w + 2)
    }
}

/// The tap offsets of a 3×3 window in a padded plane with rows of `row`.
fn taps(row: usize) -> [usize; 9] {
    [
        0,
        1,
        2,
        row,
        row + 1,
        row + 2,
        2 * row,
        2 * row + 1,
        2 * row + 2,
    ]
}

/// One band of output rows: where its wide pixels start and how many it computes (a multiple
/// of 8, the band's pixels rounded up; the extra ones fall on discarded columns or past the
/// picture, inside the padding and [`SLACK`]).
#[derive(Clone, Copy)]
struct Band {
    rows: (usize, usize),
    p0: usize,
    len: usize,
}

fn bands(x: &Padded, oblocks: usize, threads: usize) -> Vec<Band> {
    let row = x.row();
    let mut per = (ROWS_BUDGET / (4 * x.c.max(1) * row)).max(1);
    if threads > 1 {
        // Enough tasks (bands × channel blocks) for every thread to get several.
        let want = (4 * threads).div_ceil(oblocks).min(x.h.max(1));
        per = per.min(x.h.div_ceil(want).max(1));
    }
    (0..x.h)
        .step_by(per)
        .map(|r0| {
            let r1 = (r0 + per).min(x.h);
            Band {
                rows: (r0, r1),
                p0: r0 * row,
                len: ((r1 - r0) * row).div_ceil(8) * 8,
            }
        })
        .collect()
}

/// conv3x3(x) + bias, zero padding 1, stride 1, into an o-channel picture of x's size; `pack`
/// from [`pack`] (or [`pack_back`] with o = the forward input's channels and no bias).
///
/// # Panics
/// When this CPU lacks AVX2 or FMA ([`available`]) or the pack does not fit o and x.
pub fn conv3x3(x: &Padded, pack: &[f32], bias: Option<&[f32]>, o: usize, threads: usize) -> Act {
    assert!(available(), "direct convolutions need AVX2 and FMA");
    let ob = o.div_ceil(MR);
    assert_eq!(pack.len(), ob * x.c * 9 * MR, "packed weights vs channels");
    let group = if wide_kernels() { 2 } else { 1 };
    let bands = bands(x, ob.div_ceil(group), threads);
    let sizes: Vec<usize> = bands.iter().map(|b| ob * MR * b.len).collect();
    let total: usize = sizes.iter().sum();
    // Not zero-filled: the tasks write every element (see `block`).
    let mut wide: Vec<f32> = Vec::with_capacity(total);
    // Each task: one band × one block of MR output channels, a contiguous MR × len run.
    let mut tasks = Vec::with_capacity(bands.len() * ob);
    let mut rest = &mut wide.spare_capacity_mut()[..total];
    for (band, size) in bands.iter().zip(&sizes) {
        let (mine, tail) = rest.split_at_mut(*size);
        rest = tail;
        // With AVX-512, pairs of blocks (4 output channels per pass over the input band).
        for (g, out) in mine.chunks_mut(group * MR * band.len).enumerate() {
            tasks.push((*band, g * group, out));
        }
    }
    let bias_of = |blk: usize| -> [f32; MR] {
        std::array::from_fn(|m| {
            bias.and_then(|b| b.get(blk * MR + m))
                .copied()
                .unwrap_or(0.0)
        })
    };
    let run = |(band, blk, out): (Band, usize, &mut [MaybeUninit<f32>])| {
        let nb = out.len() / (MR * band.len).max(1);
        let w = &pack[blk * x.c * 9 * MR..(blk + nb) * x.c * 9 * MR];
        if nb == 2 {
            block_pair(x, w, [bias_of(blk), bias_of(blk + 1)], band, out);
        } else {
            block(x, w, bias_of(blk), band, out);
        }
    };
    if threads > 1 {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
    // SAFETY: every task wrote all of its run, and the runs tile the first `total` elements.
    unsafe { wide.set_len(total) };
    // Keep the w real columns of each row, in order.
    let (h, w, row) = (x.h, x.w, x.row());
    let starts: Vec<usize> = sizes
        .iter()
        .scan(0, |at, size| {
            let start = *at;
            *at += size;
            Some(start)
        })
        .collect();
    let gather = |oc: usize, dst: &mut Vec<f32>| {
        for (band, start) in bands.iter().zip(&starts) {
            let src = &wide[start + oc * band.len..][..band.len];
            for r in 0..band.rows.1 - band.rows.0 {
                dst.extend_from_slice(&src[r * row..r * row + w]);
            }
        }
    };
    if threads > 1 && h * w > 0 {
        // Channel by channel in parallel (a single large picture's copy was serial).
        let mut v = vec![0.0f32; o * h * w];
        v.par_chunks_mut(h * w).enumerate().for_each(|(oc, dst)| {
            let mut at = 0;
            for (band, start) in bands.iter().zip(&starts) {
                let src = &wide[start + oc * band.len..][..band.len];
                for r in 0..band.rows.1 - band.rows.0 {
                    dst[at..at + w].copy_from_slice(&src[r * row..r * row + w]);
                    at += w;
                }
            }
        });
        return Act { c: o, h, w, v };
    }
    let mut v = Vec::with_capacity(o * h * w);
    for oc in 0..o {
        gather(oc, &mut v);
    }
    Act { c: o, h, w, v }
}

/// Whether the 16-lane kernels run (x86-64 with AVX-512F).
fn wide_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Two blocks of MR output channels over one band (AVX-512 only): `w` holds both blocks'
/// packs, `out` their 2·MR rows.
fn block_pair(
    x: &Padded,
    w: &[f32],
    bias: [[f32; MR]; 2],
    band: Band,
    out: &mut [MaybeUninit<f32>],
) {
    assert!(out.len() == 2 * MR * band.len && w.len() == 2 * x.c * 9 * MR);
    if x.c > 0 && band.len > 0 {
        let last = (x.c - 1) * x.plane() + band.p0 + band.len - 1 + 2 * x.row() + 2;
        assert!(last < x.v.len(), "padded picture too short");
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F present (`wide_kernels`, checked by the caller's grouping), AVX2 and FMA
    // (`conv3x3`); reads below `last`, writes inside `out`.
    unsafe {
        avx512::pair(x, w, bias, band, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (bias, out);
        unreachable!("direct convolutions are x86-64 only")
    }
}

/// One band × MR output channels into `out` (MR rows of band.len), every element written.
fn block(x: &Padded, w: &[f32], bias: [f32; MR], band: Band, out: &mut [MaybeUninit<f32>]) {
    assert!(out.len() == MR * band.len && w.len() == x.c * 9 * MR);
    // The furthest read: the band's last pixel plus the last tap, in the last plane.
    if x.c > 0 && band.len > 0 {
        let last = (x.c - 1) * x.plane() + band.p0 + band.len - 1 + 2 * x.row() + 2;
        assert!(last < x.v.len(), "padded picture too short");
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX2 and FMA (checked by `conv3x3`); every read is below `last`,
    // inside `x.v` (checked above), and every write inside `out`.
    unsafe {
        avx::block(x, w, bias, band, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (bias, out);
        unreachable!("direct convolutions are x86-64 only")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{Band, MR, MaybeUninit, NR, Padded, taps};
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX2 and FMA present; `x`, `w` and `out` sized as `super::block` checks.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block(
        x: &Padded,
        w: &[f32],
        bias: [f32; MR],
        band: Band,
        out: &mut [MaybeUninit<f32>],
    ) {
        let offs = taps(x.row());
        let (xp, wp, op) = (
            unsafe { x.v.as_ptr().add(band.p0) },
            w.as_ptr(),
            out.as_mut_ptr().cast::<f32>(),
        );
        let (plane, c, len) = (x.plane(), x.c, band.len);
        // Tiles of 8·NR pixels, then one of the rest (len is a multiple of 8): every pixel of
        // every row written.
        let mut p = 0;
        // SAFETY (each call): pixels p..p + 8·N of the band, within len.
        while p + 8 * NR <= len {
            unsafe { tile::<NR>(xp, plane, c, wp, &offs, bias, op, len, p) };
            p += 8 * NR;
        }
        // The arms below cover every remainder of fewer than NR vectors.
        const { assert!(NR == 6) };
        match (len - p) / 8 {
            5 => unsafe { tile::<5>(xp, plane, c, wp, &offs, bias, op, len, p) },
            4 => unsafe { tile::<4>(xp, plane, c, wp, &offs, bias, op, len, p) },
            3 => unsafe { tile::<3>(xp, plane, c, wp, &offs, bias, op, len, p) },
            2 => unsafe { tile::<2>(xp, plane, c, wp, &offs, bias, op, len, p) },
            1 => unsafe { tile::<1>(xp, plane, c, wp, &offs, bias, op, len, p) },
            _ => {}
        }
    }

    /// MR output channels × 8·N pixels from p: bias, then every input channel and tap.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) unsafe fn tile<const N: usize>(
        xp: *const f32,
        plane: usize,
        c: usize,
        wp: *const f32,
        offs: &[usize; 9],
        bias: [f32; MR],
        op: *mut f32,
        len: usize,
        p: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); N]; MR];
        for (m, row) in acc.iter_mut().enumerate() {
            *row = [_mm256_set1_ps(bias[m]); N];
        }
        for ci in 0..c {
            // SAFETY: reads of plane ci at p + tap + 8n, inside the padded picture.
            unsafe {
                let xb = xp.add(ci * plane + p);
                let wb = wp.add(ci * 9 * MR);
                for (t, off) in offs.iter().enumerate() {
                    let mut ws = [_mm256_setzero_ps(); MR];
                    for (m, wv) in ws.iter_mut().enumerate() {
                        *wv = _mm256_broadcast_ss(&*wb.add(t * MR + m));
                    }
                    for n in 0..N {
                        let xv = _mm256_loadu_ps(xb.add(off + 8 * n));
                        for (row, wv) in acc.iter_mut().zip(&ws) {
                            row[n] = _mm256_fmadd_ps(*wv, xv, row[n]);
                        }
                    }
                }
            }
        }
        for (m, row) in acc.iter().enumerate() {
            for (n, a) in row.iter().enumerate() {
                // SAFETY: row m of the block, pixels p + 8n .. + 8 < len.
                unsafe { _mm256_storeu_ps(op.add(m * len + p + 8 * n), *a) };
            }
        }
    }

    /// Adds the weight gradients of one or two output channels (`dy`: their wide rows of n)
    /// into `g` ([rows][i][9]): taps 0–5 with both rows at once (12 accumulators, 2 + 6 loads
    /// per 12 FMAs), then taps 6–8.
    ///
    /// # Safety
    /// AVX2 and FMA present; every read x.v[ci·plane + tap + p], p < n, inside x.v.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_pair(dy: &[f32], n: usize, x: &Padded, g: &mut [f32]) {
        // SAFETY: as the caller vouches.
        unsafe {
            if dy.len() == 2 * n {
                rows::<2>(dy.as_ptr(), n, x, g)
            } else {
                rows::<1>(dy.as_ptr(), n, x, g)
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows<const M: usize>(dy: *const f32, n: usize, x: &Padded, g: &mut [f32]) {
        let offs = taps(x.row());
        let lo: [usize; 6] = std::array::from_fn(|t| offs[t]);
        let hi: [usize; 3] = std::array::from_fn(|t| offs[6 + t]);
        for ci in 0..x.c {
            // SAFETY: as the caller of `weight_grad_pair` vouches.
            let (a, b): ([[f32; 6]; M], [[f32; 3]; M]) = unsafe {
                let xp = x.v.as_ptr().add(ci * x.plane());
                (dots(dy, n, xp, &lo), dots(dy, n, xp, &hi))
            };
            for (m, (a, b)) in a.iter().zip(&b).enumerate() {
                let gm = &mut g[(m * x.c + ci) * 9..][..9];
                for (d, v) in gm.iter_mut().zip(a.iter().chain(b)) {
                    *d += v;
                }
            }
        }
    }

    /// Σ_p dy[m·n + p] · x[off_t + p] over p < n (a multiple of 8), for M rows and T taps.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dots<const M: usize, const T: usize>(
        dy: *const f32,
        n: usize,
        x: *const f32,
        offs: &[usize; T],
    ) -> [[f32; T]; M] {
        let mut acc = [[_mm256_setzero_ps(); T]; M];
        let mut p = 0;
        while p < n {
            // SAFETY: rows of dy hold n; the caller vouches for x's reads.
            unsafe {
                // Plain loops, not `from_fn`/`map`: their closures compile out of line,
                // without AVX2.
                let mut d = [_mm256_setzero_ps(); M];
                for (m, dv) in d.iter_mut().enumerate() {
                    *dv = _mm256_loadu_ps(dy.add(m * n + p));
                }
                for (t, off) in offs.iter().enumerate() {
                    let xv = _mm256_loadu_ps(x.add(off + p));
                    for (row, dv) in acc.iter_mut().zip(&d) {
                        row[t] = _mm256_fmadd_ps(*dv, xv, row[t]);
                    }
                }
            }
            p += 8;
        }
        let mut out = [[0.0f32; T]; M];
        for (o, a) in out.iter_mut().zip(&acc) {
            for (v, lanes) in o.iter_mut().zip(a) {
                let mut l = [0.0f32; 8];
                // SAFETY: 8 floats into an 8-float array.
                unsafe { _mm256_storeu_ps(l.as_mut_ptr(), *lanes) };
                *v = l.iter().sum();
            }
        }
        out
    }
}

/// Adds ∂⟨dy, conv3x3(x)⟩/∂W into `gw` ([o, i, 3, 3]): for each output channel pair, input
/// channel and tap, the dot product of the output gradient (as a wide picture, zero on the
/// discarded columns and past the end) with the input plane shifted by the tap, in 8 lanes.
pub fn weight_grad(dy: &Act, x: &Padded, gw: &mut [f32], threads: usize) {
    assert!(available(), "direct convolutions need AVX2 and FMA");
    let (o, i, row) = (dy.c, x.c, x.row());
    assert!(dy.h == x.h && dy.w == x.w && gw.len() == o * i * 9);
    if gw.is_empty() {
        return;
    }
    let n = (x.h * row).div_ceil(8) * 8;
    let mut wide = vec![0.0f32; o * n];
    for oc in 0..o {
        for y in 0..x.h {
            wide[oc * n + y * row..][..x.w].copy_from_slice(&dy.v[(oc * x.h + y) * x.w..][..x.w]);
        }
    }
    // The furthest read: plane i−1 at the last tap's offset plus n − 1.
    assert!((i - 1) * x.plane() + 2 * row + 2 + n <= x.v.len());
    let run = |(pair, g): (usize, &mut [f32])| {
        let rows = g.len() / (i * 9);
        let dy = &wide[2 * pair * n..(2 * pair + rows) * n];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA present (asserted); `dy` holds `rows` rows of n, and every read
        // of x is inside x.v (asserted above).
        unsafe {
            avx::weight_grad_pair(dy, n, x, g)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (dy, g);
            unreachable!("direct convolutions are x86-64 only")
        }
    };
    if threads > 1 {
        gw.par_chunks_mut(2 * i * 9).enumerate().for_each(run);
    } else {
        gw.chunks_mut(2 * i * 9).enumerate().for_each(run);
    }
}
