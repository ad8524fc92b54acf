//! The JPEG round trip at quality q, as DDRM-JPEG defines it: RGB → YCbCr (JFIF), chroma
//! averaged over 2×2 (4:2:0), the orthonormal 8×8 DCT of every block, division by the IJG
//! tables scaled for q, rounding, and back (chroma repeated over 2×2). Values are in [−1, 1]
//! as everywhere here, 0–255 inside. Pictures are extended by repeating their last row and
//! column to whole blocks (16 pixels in colour, 8 in grey), as an encoder does, and cropped
//! after. Left out: the decoder's final rounding to whole levels and clamping to 0–255.
//!
//! Rounding has no useful derivative: the VJP treats it as the identity (the straight-through
//! estimator), so it is the adjoint of the round trip without rounding, a projection that
//! removes the chroma detail 4:2:0 cannot hold. The forward value keeps the rounding, so a
//! residual y − A(x) is exactly zero for every x that encodes to y's coefficients.

use super::{Operator, Task};
use crate::error::{Error, Result};
use crate::tensor;
use burn::tensor::{Device, Tensor};

/// ITU T.81 table K.1 (luminance), natural order.
pub const LUMA_TABLE: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// Table K.2 (chrominance), natural order.
pub const CHROMA_TABLE: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// The natural (row-major) index of the i-th coefficient in zigzag order, the order a file's
/// quantisation tables are stored in.
pub const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A standard table scaled for quality q as libjpeg does (`jpeg_quality_scaling`, baseline).
pub fn scaled_table(table: &[u16; 64], quality: u32) -> [u16; 64] {
    let q = quality.clamp(1, 100);
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    table.map(|v| ((u32::from(v) * scale + 50) / 100).clamp(1, 255) as u16)
}

/// The orthonormal 8-point DCT-II matrix D (row k, column n): a block's coefficients are
/// D X Dᵀ, which is JPEG's FDCT exactly.
fn dct_matrix() -> Vec<f64> {
    let mut d = vec![0.0; 64];
    for k in 0..8 {
        let a = if k == 0 { (1.0f64 / 8.0).sqrt() } else { 0.5 };
        for n in 0..8 {
            d[k * 8 + n] = a * (std::f64::consts::PI * (2 * n + 1) as f64 * k as f64 / 16.0).cos();
        }
    }
    d
}

pub struct Jpeg {
    shape: [usize; 3],
    quality: u32,
    /// The luminance table (its DC step sets the model error).
    luma: [u16; 64],
    /// [1, 1, 8, 8] tensors: D and the two tables.
    dct: Tensor<4>,
    luma_q: Tensor<4>,
    chroma_q: Tensor<4>,
}

impl Jpeg {
    pub fn new(shape: [usize; 3], quality: u32, device: &Device) -> Result<Self> {
        if !(1..=100).contains(&quality) {
            return Err(Error::invalid(
                "Jpeg",
                format!("quality must be between 1 and 100, got {quality}"),
            ));
        }
        if shape[0] != 1 && shape[0] != 3 {
            return Err(Error::invalid(
                "Jpeg",
                format!("needs a grey or RGB picture, got {} channels", shape[0]),
            ));
        }
        let luma = scaled_table(&LUMA_TABLE, quality);
        let table = |t: &[u16; 64]| {
            let v: Vec<f32> = t.iter().map(|&q| f32::from(q)).collect();
            tensor::from_vec(v, [1, 1, 8, 8], device)
        };
        Ok(Self {
            shape,
            quality,
            dct: tensor::from_f64(&dct_matrix(), [1, 1, 8, 8], device),
            luma_q: table(&luma),
            chroma_q: table(&scaled_table(&CHROMA_TABLE, quality)),
            luma,
        })
    }

    pub fn quality(&self) -> u32 {
        self.quality
    }

    /// The round trip without rounding: the linear map the VJP follows (straight-through), a
    /// projection that removes what 4:2:0 chroma cannot hold.
    pub fn linear_part(&self, x: Tensor<4>) -> Tensor<4> {
        self.round_trip(x, false)
    }

    /// A level-shifted plane [B, 1, H, W] (H, W multiples of 8) through DCT, quantisation
    /// with `table`, rounding (straight-through; left out unless `round`) and the inverse DCT.
    fn quantise_plane(&self, plane: Tensor<4>, table: &Tensor<4>, round: bool) -> Tensor<4> {
        let [b, _, h, w] = plane.dims();
        let (hb, wb) = (h / 8, w / 8);
        let blocks = plane.reshape([b * hb, 8, wb, 8]).swap_dims(1, 2);
        let n = [b * hb, wb, 8, 8];
        let d = self.dct.clone().expand(n);
        let q = table.clone().expand(n);
        let coef = d.clone().matmul(blocks).matmul(d.clone().transpose()) / q.clone();
        let rounded = if round {
            coef.clone() + (coef.clone().round() - coef).detach()
        } else {
            coef
        };
        let back = d.clone().transpose().matmul(rounded * q).matmul(d);
        back.swap_dims(1, 2).reshape([b, 1, h, w])
    }
}

/// x [B, C, H, W] extended to [B, C, H + ph, W + pw] by repeating its last row and column.
fn pad_edges(x: Tensor<4>, ph: usize, pw: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let x = if ph > 0 {
        let last = x
            .clone()
            .slice([0..b, 0..c, h - 1..h, 0..w])
            .expand([b, c, ph, w]);
        Tensor::cat(vec![x, last], 2)
    } else {
        x
    };
    if pw > 0 {
        let hh = h + ph;
        let last = x
            .clone()
            .slice([0..b, 0..c, 0..hh, w - 1..w])
            .expand([b, c, hh, pw]);
        Tensor::cat(vec![x, last], 3)
    } else {
        x
    }
}

/// The adjoint of [`pad_edges`]: [B, C, H', W'] back to [B, C, H, W], the extension's values
/// added onto the last row and column they repeat.
fn fold_edges(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [b, c, hp, wp] = x.dims();
    let x = if hp > h {
        let extra = x.clone().slice([0..b, 0..c, h..hp, 0..wp]).sum_dim(2);
        let last = x.clone().slice([0..b, 0..c, h - 1..h, 0..wp]) + extra;
        x.slice([0..b, 0..c, 0..h, 0..wp])
            .slice_assign([0..b, 0..c, h - 1..h, 0..wp], last)
    } else {
        x
    };
    if wp > w {
        let extra = x.clone().slice([0..b, 0..c, 0..h, w..wp]).sum_dim(3);
        let last = x.clone().slice([0..b, 0..c, 0..h, w - 1..w]) + extra;
        x.slice([0..b, 0..c, 0..h, 0..w])
            .slice_assign([0..b, 0..c, 0..h, w - 1..w], last)
    } else {
        x
    }
}

/// The 2×2 mean of a plane [B, 1, H, W] (H, W even): [B, 1, H/2, W/2].
fn pool2(p: Tensor<4>) -> Tensor<4> {
    let [b, _, h, w] = p.dims();
    p.reshape([b * h / 2, 2, w / 2, 2])
        .sum_dims(&[1, 3])
        .reshape([b, 1, h / 2, w / 2])
        .mul_scalar(0.25)
}

/// Each value of [B, 1, H, W] repeated over 2×2: [B, 1, 2H, 2W].
fn repeat2(p: Tensor<4>) -> Tensor<4> {
    let [b, _, h, w] = p.dims();
    p.reshape([b * h, 1, w, 1])
        .expand([b * h, 2, w, 2])
        .reshape([b, 1, 2 * h, 2 * w])
}

impl Operator for Jpeg {
    fn name(&self) -> String {
        format!("Jpeg(quality: {})", self.quality)
    }
    fn task(&self) -> Task {
        Task::Dejpeg
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.round_trip(x, true)
    }
    /// The adjoint of the unrounded round trip (see `vjp`).
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        self.linear_adjoint(y)
    }
    fn is_linear(&self) -> bool {
        false
    }
    fn is_round_trip(&self) -> bool {
        true
    }
    /// Straight-through: the adjoint of the round trip without rounding, the same at every x.
    fn vjp(&self, _x: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
        self.linear_adjoint(v)
    }
    /// The rounding error as noise: the RMS of y minus the unrounded round trip, which on
    /// held-out photos (twelve mate-backgrounds nature photos, 256² centre squares, qualities
    /// 2–95) follows the luminance DC step Q₀: median 1.3·√Q₀ levels in colour, 0.75·√Q₀ in
    /// grey, within about 20% from quality 5 to 90 (docs/nonlinear-table.md).
    fn model_error_sigma(&self) -> f64 {
        let share = if self.shape[0] == 1 { 0.75 } else { 1.3 };
        share * f64::from(self.luma[0]).sqrt() / 127.5
    }
    /// The Jacobian of the round trip without rounding is a projection (‖J‖ = 1).
    fn norm_sq(&self, _device: &Device) -> Result<f64> {
        Ok(1.0)
    }
}

impl Jpeg {
    /// Jᵀv for J = crop · T⁻¹ · P · T · extend, the unrounded round trip: T the JFIF colour
    /// transform, P the 4:2:0 chroma projection (symmetric), the DCT pairs cancel. In grey J
    /// is the identity.
    fn linear_adjoint(&self, v: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = v.dims();
        if c == 1 {
            return v;
        }
        let (hp, wp) = (h.div_ceil(16) * 16, w.div_ceil(16) * 16);
        // crop's adjoint: zeros in the extension.
        let v = if (hp, wp) == (h, w) {
            v
        } else {
            Tensor::zeros([b, c, hp, wp], &v.device()).slice_assign([0..b, 0..c, 0..h, 0..w], v)
        };
        let ch = |i: usize| v.clone().slice([0..b, i..i + 1, 0..hp, 0..wp]);
        let (r, g, bl) = (ch(0), ch(1), ch(2));
        // (T⁻¹)ᵀ: back from RGB to (Y, Cb, Cr).
        let y = r.clone() + g.clone() + bl.clone();
        let cb = g.clone().mul_scalar(-0.344_136) + bl.mul_scalar(1.772);
        let cr = r.mul_scalar(1.402) - g.mul_scalar(0.714_136);
        let (cb, cr) = (repeat2(pool2(cb)), repeat2(pool2(cr)));
        // Tᵀ: back to RGB.
        let mix = |a: f64, bb: f64, cc: f64| {
            y.clone().mul_scalar(a) + cb.clone().mul_scalar(bb) + cr.clone().mul_scalar(cc)
        };
        let rgb = Tensor::cat(
            vec![
                mix(0.299, -0.168_736, 0.5),
                mix(0.587, -0.331_264, -0.418_688),
                mix(0.114, 0.5, -0.081_312),
            ],
            1,
        );
        fold_edges(rgb, h, w)
    }

    fn round_trip(&self, x: Tensor<4>, round: bool) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let unit = if c == 3 { 16 } else { 8 };
        let (ph, pw) = ((unit - h % unit) % unit, (unit - w % unit) % unit);
        let levels = pad_edges(x, ph, pw).add_scalar(1.0).mul_scalar(127.5);
        let [_, _, hp, wp] = levels.dims();
        let plane = |i: usize| levels.clone().slice([0..b, i..i + 1, 0..hp, 0..wp]);
        let out = if c == 1 {
            self.quantise_plane(plane(0).sub_scalar(128.0), &self.luma_q, round)
                .add_scalar(128.0)
        } else {
            let (r, g, bl) = (plane(0), plane(1), plane(2));
            let mix = |a: f64, bb: f64, cc: f64| {
                r.clone().mul_scalar(a) + g.clone().mul_scalar(bb) + bl.clone().mul_scalar(cc)
            };
            let y = mix(0.299, 0.587, 0.114).sub_scalar(128.0);
            let cb = pool2(mix(-0.168_736, -0.331_264, 0.5));
            let cr = pool2(mix(0.5, -0.418_688, -0.081_312));
            let y = self
                .quantise_plane(y, &self.luma_q, round)
                .add_scalar(128.0);
            let cb = repeat2(self.quantise_plane(cb, &self.chroma_q, round));
            let cr = repeat2(self.quantise_plane(cr, &self.chroma_q, round));
            let r = y.clone() + cr.clone().mul_scalar(1.402);
            let g = y.clone() - cb.clone().mul_scalar(0.344_136) - cr.mul_scalar(0.714_136);
            let bl = y + cb.mul_scalar(1.772);
            Tensor::cat(vec![r, g, bl], 1)
        };
        out.slice([0..b, 0..c, 0..h, 0..w])
            .div_scalar(127.5)
            .sub_scalar(1.0)
    }
}

/// The quality whose IJG luminance table is nearest to the first quantisation table of a
/// JPEG file (8 or 16-bit, as stored in its DQT segment), and whether it matches exactly
/// (an encoder using libjpeg's tables, as most do); None when the file has no table.
pub fn quality_of_file(bytes: &[u8]) -> Option<(u32, bool)> {
    let table = first_dqt_table(bytes)?;
    let mut best = (u64::MAX, 0u32);
    for q in 1..=100 {
        let t = scaled_table(&LUMA_TABLE, q);
        let err: u64 = (0..64)
            .map(|i| u64::from(t[ZIGZAG[i]].abs_diff(table[i])))
            .sum();
        if err < best.0 {
            best = (err, q);
        }
    }
    Some((best.1, best.0 == 0))
}

/// The first quantisation table of a JPEG file, in zigzag order.
fn first_dqt_table(bytes: &[u8]) -> Option<[u16; 64]> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        // Fill bytes and markers without a length.
        if marker == 0xFF || marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
            at += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if marker == 0xDB {
            let seg = bytes.get(at + 4..at + 2 + len)?;
            let precision16 = seg.first()? >> 4 == 1;
            let mut t = [0u16; 64];
            for (i, v) in t.iter_mut().enumerate() {
                *v = if precision16 {
                    u16::from_be_bytes([*seg.get(1 + 2 * i)?, *seg.get(2 + 2 * i)?])
                } else {
                    u16::from(*seg.get(1 + i)?)
                };
            }
            return Some(t);
        }
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        at += 2 + len;
    }
    None
}
