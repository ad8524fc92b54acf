//! Pairs of blocks in 16 lanes where the CPU has AVX-512: four output channels per pass over
//! the input band and twice the pixels per FMA, for the wide layers of the imported networks
//! (128–512 channels); a last run of 8 pixels goes to AVX2, and so does an odd last block.

use super::{Band, MR, MaybeUninit, Padded, taps};
use std::arch::x86_64::*;

/// Pixel vectors per tile of a pair: 4·5 accumulators, 5 pixel vectors and 4 weights fit
/// AVX-512's 32 registers.
const NP: usize = 5;

/// # Safety
/// As [`block`], with `w` two blocks' packs and `out` their 2·MR rows.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn pair(
    x: &Padded,
    w: &[f32],
    bias: [[f32; MR]; 2],
    band: Band,
    out: &mut [MaybeUninit<f32>],
) {
    let offs = taps(x.row());
    let (plane, c, len) = (x.plane(), x.c, band.len);
    let (xp, op) = (
        unsafe { x.v.as_ptr().add(band.p0) },
        out.as_mut_ptr().cast::<f32>(),
    );
    let (w0, w1) = (w.as_ptr(), unsafe { w.as_ptr().add(c * 9 * MR) });
    let mut p = 0;
    // SAFETY (each call): pixels p..p + 16·N of the band, within len.
    while p + 16 * NP <= len {
        unsafe { tile2::<NP>(xp, plane, c, (w0, w1), &offs, bias, op, len, p) };
        p += 16 * NP;
    }
    const { assert!(NP == 5) };
    match (len - p) / 16 {
        4 => unsafe { tile2::<4>(xp, plane, c, (w0, w1), &offs, bias, op, len, p) },
        3 => unsafe { tile2::<3>(xp, plane, c, (w0, w1), &offs, bias, op, len, p) },
        2 => unsafe { tile2::<2>(xp, plane, c, (w0, w1), &offs, bias, op, len, p) },
        1 => unsafe { tile2::<1>(xp, plane, c, (w0, w1), &offs, bias, op, len, p) },
        _ => {}
    }
    p += (len - p) / 16 * 16;
    if p < len {
        // SAFETY: the last 8 pixels of each block's rows.
        unsafe {
            super::avx::tile::<1>(xp, plane, c, w0, &offs, bias[0], op, len, p);
            super::avx::tile::<1>(xp, plane, c, w1, &offs, bias[1], op.add(MR * len), len, p);
        }
    }
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile2<const N: usize>(
    xp: *const f32,
    plane: usize,
    c: usize,
    (w0, w1): (*const f32, *const f32),
    offs: &[usize; 9],
    bias: [[f32; MR]; 2],
    op: *mut f32,
    len: usize,
    p: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); N]; 2 * MR];
    for (m, row) in acc.iter_mut().enumerate() {
        *row = [_mm512_set1_ps(bias[m / MR][m % MR]); N];
    }
    for ci in 0..c {
        // SAFETY: reads of plane ci at p + tap + 16n, inside the padded picture.
        unsafe {
            let xb = xp.add(ci * plane + p);
            let (a, b) = (w0.add(ci * 9 * MR), w1.add(ci * 9 * MR));
            for (t, off) in offs.iter().enumerate() {
                let mut ws = [_mm512_setzero_ps(); 2 * MR];
                for (m, wv) in ws.iter_mut().enumerate() {
                    let src = if m < MR { a } else { b };
                    *wv = _mm512_set1_ps(*src.add(t * MR + m % MR));
                }
                for n in 0..N {
                    let xv = _mm512_loadu_ps(xb.add(off + 16 * n));
                    for (row, wv) in acc.iter_mut().zip(&ws) {
                        row[n] = _mm512_fmadd_ps(*wv, xv, row[n]);
                    }
                }
            }
        }
    }
    for (m, row) in acc.iter().enumerate() {
        for (n, a) in row.iter().enumerate() {
            // SAFETY: row m of the pair, pixels p + 16n .. + 16 ≤ len.
            unsafe { _mm512_storeu_ps(op.add(m * len + p + 16 * n), *a) };
        }
    }
}
