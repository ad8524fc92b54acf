//! The numerical kernels of the CPU U-Net: im2col and its adjoint, and GEMM through the `gemm`
//! crate (the kernels burn flex itself uses), the only unsafe code of the path.

use super::layers::Act;
use std::borrow::Cow;

/// Defines `$name` to run `$body` (an `#[inline(always)]` method) compiled for AVX2 and FMA
/// where the CPU has them, so that its loops vectorise eight lanes wide (the crate is built for
/// baseline x86-64: four), and as it is elsewhere.
macro_rules! wide_method {
    ($(#[$doc:meta])* $vis:vis fn $name:ident / $avx:ident => $body:ident
        (&self $(, $arg:ident : $ty:ty)*) -> $ret:ty) => {
        $(#[$doc])*
        $vis fn $name(&self $(, $arg: $ty)*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            if super::direct::available() {
                // SAFETY: the CPU has AVX2 and FMA.
                return unsafe { self.$avx($($arg),*) };
            }
            self.$body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx(&self $(, $arg: $ty)*) -> $ret {
            self.$body($($arg),*)
        }
    };
}
pub(super) use wide_method;

/// The output columns `ox` whose input column ox·s + kx − pad lies inside 0..w.
fn valid_cols(w: usize, wo: usize, s: usize, kx: usize, pad: usize) -> std::ops::Range<usize> {
    // ox·s + kx ≥ pad  and  ox·s + kx − pad < w.
    let lo = pad.saturating_sub(kx).div_ceil(s);
    let hi = (w + pad).saturating_sub(kx).div_ceil(s).min(wo);
    lo..hi.max(lo)
}

/// Output rows per tile of a convolution with `kk` = in·k·k columns per pixel: a tile's
/// columns (kk × rows·wo floats) stay within ~256 KiB, what a core's L2 holds beside the
/// GEMM's packed operands, but a tile has at least 128 pixels so each GEMM call has work. At
/// 64×64 with 32–64 channels this was measured 2.7–4× faster than one im2col of the whole
/// picture, whose columns (5–10 MB) stream through memory twice.
fn tile_rows(kk: usize, wo: usize, ho: usize) -> usize {
    const BUDGET: usize = 64 * 1024;
    (BUDGET / (kk * wo).max(1))
        .max(128usize.div_ceil(wo.max(1)))
        .clamp(1, ho.max(1))
}

/// Columns of every k×k window whose output row is in `rows`, [c·k·k, rows·wo], written once
/// in order into `col` (cleared first; no zero-fill pass).
pub fn im2col(
    x: &Act,
    k: usize,
    s: usize,
    wo: usize,
    rows: std::ops::Range<usize>,
    col: &mut Vec<f32>,
) {
    let pad = k / 2;
    col.clear();
    col.reserve(x.c * k * k * rows.len() * wo);
    for ci in 0..x.c {
        let plane = &x.v[ci * x.h * x.w..(ci + 1) * x.h * x.w];
        for ky in 0..k {
            for kx in 0..k {
                let cols = valid_cols(x.w, wo, s, kx, pad);
                for oy in rows.clone() {
                    let iy = (oy * s + ky) as isize - pad as isize;
                    if iy < 0 || iy >= x.h as isize {
                        col.extend(std::iter::repeat_n(0.0, wo));
                        continue;
                    }
                    let src = &plane[iy as usize * x.w..][..x.w];
                    col.extend(std::iter::repeat_n(0.0, cols.start));
                    let first = cols.start * s + kx - pad;
                    if s == 1 {
                        col.extend_from_slice(&src[first..first + cols.len()]);
                    } else {
                        col.extend(src[first..].iter().step_by(s).take(cols.len()));
                    }
                    col.extend(std::iter::repeat_n(0.0, wo - cols.end));
                }
            }
        }
    }
}

/// The adjoint of [`im2col`] for output rows `rows`: scatter-adds the columns onto `x`.
pub fn col2im(
    dcol: &[f32],
    x: &mut Act,
    k: usize,
    s: usize,
    wo: usize,
    rows: std::ops::Range<usize>,
) {
    let (n, pad) = (rows.len() * wo, k / 2);
    let (h, w) = (x.h, x.w);
    for ci in 0..x.c {
        let plane = &mut x.v[ci * h * w..(ci + 1) * h * w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &dcol[((ci * k + ky) * k + kx) * n..][..n];
                let cols = valid_cols(w, wo, s, kx, pad);
                if cols.is_empty() {
                    continue;
                }
                let first = cols.start * s + kx - pad;
                for (r, oy) in rows.clone().enumerate() {
                    let iy = (oy * s + ky) as isize - pad as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let src = &row[r * wo + cols.start..r * wo + cols.end];
                    let dst = &mut plane[iy as usize * w + first..];
                    if s == 1 {
                        dst[..src.len()]
                            .iter_mut()
                            .zip(src)
                            .for_each(|(d, g)| *d += g);
                    } else {
                        dst.iter_mut()
                            .step_by(s)
                            .zip(src)
                            .for_each(|(d, g)| *d += g);
                    }
                }
            }
        }
    }
}

/// Columns `cols` of a row-major matrix with `n` columns, as a contiguous rows × cols.len()
/// (borrowed when they are all of them).
pub fn columns(m: &[f32], n: usize, cols: std::ops::Range<usize>) -> Cow<'_, [f32]> {
    if cols.len() == n {
        return Cow::Borrowed(m);
    }
    let rows = m.len() / n.max(1);
    let mut out = Vec::with_capacity(rows * cols.len());
    for r in 0..rows {
        out.extend_from_slice(&m[r * n + cols.start..r * n + cols.end]);
    }
    Cow::Owned(out)
}

/// The tiles of an ho × wo output with `kk` columns per pixel ([`tile_rows`]): each tile's
/// output rows and its pixels (row-major indices).
pub fn row_tiles(
    kk: usize,
    wo: usize,
    ho: usize,
) -> impl Iterator<Item = (std::ops::Range<usize>, std::ops::Range<usize>)> {
    let step = tile_rows(kk, wo, ho);
    (0..ho).step_by(step).map(move |r0| {
        let r1 = (r0 + step).min(ho);
        (r0..r1, r0 * wo..r1 * wo)
    })
}

/// c[m×n] += a · b with a and b given as (data, row stride, column stride) of an m×k and a
/// k×n matrix (each row-major or column-major); c row-major. The `gemm` crate's kernels (those
/// burn flex uses).
pub fn matmul_acc(
    c: &mut [f32],
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    m: usize,
    n: usize,
    k: usize,
    threads: usize,
) {
    assert!(c.len() == m * n);
    // SAFETY: `c` holds m×n initialised values, read and overwritten; it aliases no input.
    unsafe { gemm_raw(c.as_mut_ptr(), true, a, b, m, n, k, threads) }
}

/// a · b into a new m×n row-major matrix (written by the kernel, never zero-filled first).
pub fn matmul_new(
    a: (&[f32], usize, usize),
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    threads: usize,
) -> Vec<f32> {
    let mut c = Vec::with_capacity(m * n);
    // SAFETY: with `read_dst` false the kernel writes all m×n entries of the capacity before
    // anything reads them; the length is set only after.
    unsafe {
        gemm_raw(c.as_mut_ptr(), false, a, (b, n, 1), m, n, k, threads);
        c.set_len(m * n);
    }
    c
}

/// # Safety
/// `c` must point to m×n writable f32 (initialised when `read_dst`), aliasing neither input.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    c: *mut f32,
    read_dst: bool,
    (a, a_rs, a_cs): (&[f32], usize, usize),
    (b, b_rs, b_cs): (&[f32], usize, usize),
    m: usize,
    n: usize,
    k: usize,
    threads: usize,
) {
    assert!(a.len() == m * k && b.len() == k * n);
    assert!((a_rs == k && a_cs == 1) || (a_rs == 1 && a_cs == m));
    assert!((b_rs == n && b_cs == 1) || (b_rs == 1 && b_cs == k));
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `a` and `b` hold exactly the m×k and k×n matrices their strides describe
    // (checked above); the caller vouches for `c`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            n as isize,
            read_dst,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}
