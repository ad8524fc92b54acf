//! The numerical kernels of the CPU U-Net: im2col and its adjoint, and GEMM through the `gemm`
//! crate (the kernels burn flex itself uses), the only unsafe code of the path.

use super::layers::Act;

/// The output columns `ox` whose input column ox·s + kx − pad lies inside 0..w.
fn valid_cols(w: usize, wo: usize, s: usize, kx: usize, pad: usize) -> std::ops::Range<usize> {
    // ox·s + kx ≥ pad  and  ox·s + kx − pad < w.
    let lo = pad.saturating_sub(kx).div_ceil(s);
    let hi = (w + pad).saturating_sub(kx).div_ceil(s).min(wo);
    lo..hi.max(lo)
}

/// Columns of every k×k window, [c·k·k, ho·wo], written once in order (no zero-fill pass).
pub fn im2col(x: &Act, k: usize, s: usize, ho: usize, wo: usize) -> Vec<f32> {
    let pad = k / 2;
    let mut col = Vec::with_capacity(x.c * k * k * ho * wo);
    for ci in 0..x.c {
        let plane = &x.v[ci * x.h * x.w..(ci + 1) * x.h * x.w];
        for ky in 0..k {
            for kx in 0..k {
                let cols = valid_cols(x.w, wo, s, kx, pad);
                for oy in 0..ho {
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
    col
}

/// The adjoint of [`im2col`]: scatter-adds columns back onto an image of c × h × w.
#[allow(clippy::too_many_arguments)]
pub fn col2im(
    dcol: &[f32],
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    ho: usize,
    wo: usize,
) -> Act {
    let (n, pad) = (ho * wo, k / 2);
    let mut x = Act::zeros(c, h, w);
    for ci in 0..c {
        let plane = &mut x.v[ci * h * w..(ci + 1) * h * w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &dcol[((ci * k + ky) * k + kx) * n..][..n];
                let cols = valid_cols(w, wo, s, kx, pad);
                if cols.is_empty() {
                    continue;
                }
                let first = cols.start * s + kx - pad;
                for oy in 0..ho {
                    let iy = (oy * s + ky) as isize - pad as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let src = &row[oy * wo + cols.start..oy * wo + cols.end];
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
    x
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
