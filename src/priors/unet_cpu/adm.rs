//! The imported ADM network's forward pass on the CPU without burn (inference only: the VJP
//! goes through burn's autodiff), on the same kernels as the shipped U-Net's CPU path: direct
//! AVX2 3×3 convolutions, im2col + GEMM for the others, GroupNorm fused with SiLU, images of a
//! batch in parallel (one image splits its convolutions). Scale-shift normalisation is the
//! fused GroupNorm with per-image affine weights γ(1 + s), β(1 + s) + b. Equal to the burn path
//! to ~1e-6 (tests/checkpoints.rs).

use super::conv::Conv;
use super::kernels::{matmul_acc, matmul_new};
use super::layers::{Act, Lin, Norm, per_image, silu_in_place, upsample2};
use crate::priors::adm::HostWeights;
use crate::priors::adm_layout::{AdmConfig, AttentionOrder, Layer, Resample};

pub(super) struct Res {
    pub(super) norm1: Norm,
    pub(super) conv1: Conv,
    emb: Lin,
    /// GroupNorm's affine weights before the embedding's scale and shift.
    norm2: (Vec<f32>, Vec<f32>),
    pub(super) conv2: Conv,
    pub(super) skip: Option<Conv>,
    pub(super) resample: Resample,
}

pub(super) struct Attention {
    pub(super) gamma: Vec<f32>,
    beta: Vec<f32>,
    pub(super) qkv: Conv,
    pub(super) proj: Conv,
    pub(super) heads: usize,
}

pub(super) enum Block {
    Conv(Conv),
    Res(Box<Res>),
    Attention(Box<Attention>),
    Down(Option<Conv>),
    Up(Option<Conv>),
}

/// The network's weights as host copies, laid out for the CPU kernels.
pub struct AdmCpu {
    cfg: AdmConfig,
    time1: Lin,
    time2: Lin,
    label: Option<Vec<f32>>,
    pub(super) input: Vec<Vec<Block>>,
    pub(super) middle: Vec<Block>,
    pub(super) output: Vec<Vec<Block>>,
    pub(super) out_norm: Norm,
    pub(super) out_conv: Conv,
}

struct Take<'a> {
    w: &'a HostWeights,
    cfg: &'a AdmConfig,
}

impl Take<'_> {
    fn get(&self, name: &str) -> Option<Vec<f32>> {
        self.w.get(name).map(|(v, _)| v.clone())
    }

    fn conv(&self, name: &str, i: usize, o: usize, k: usize, stride: usize) -> Option<Conv> {
        let w = self.get(&format!("{name}.weight"))?;
        let b = self.get(&format!("{name}.bias"))?;
        Some(Conv::new(w, b, (i, o, k), stride, 0))
    }

    fn norm(&self, name: &str) -> Option<Norm> {
        Some(Norm {
            gamma: self.get(&format!("{name}.weight"))?,
            beta: self.get(&format!("{name}.bias"))?,
            groups: self.cfg.groups,
            eps: self.cfg.norm_eps,
            g: 0,
        })
    }

    /// A linear layer from the file's [out, in] to the kernels' [in][out].
    fn lin(&self, name: &str, i: usize, o: usize) -> Option<Lin> {
        let w = self.get(&format!("{name}.weight"))?;
        let mut t = vec![0.0f32; i * o];
        for r in 0..o {
            for c in 0..i {
                t[c * o + r] = w[r * i + c];
            }
        }
        Some(Lin {
            w: t,
            b: self.get(&format!("{name}.bias"))?,
            i,
            o,
            g: 0,
        })
    }

    fn block(&self, layer: &Layer) -> Option<Block> {
        let e = self.cfg.emb_dim();
        Some(match layer {
            Layer::Conv { name, cin, cout } => Block::Conv(self.conv(name, *cin, *cout, 3, 1)?),
            Layer::Res {
                name,
                cin,
                cout,
                resample,
            } => {
                let (i, o) = (*cin, *cout);
                let emb_out = if self.cfg.scale_shift { 2 * o } else { o };
                Block::Res(Box::new(Res {
                    norm1: self.norm(&format!("{name}.in_layers.0"))?,
                    conv1: self.conv(&format!("{name}.in_layers.2"), i, o, 3, 1)?,
                    emb: self.lin(&format!("{name}.emb_layers.1"), e, emb_out)?,
                    norm2: (
                        self.get(&format!("{name}.out_layers.0.weight"))?,
                        self.get(&format!("{name}.out_layers.0.bias"))?,
                    ),
                    conv2: self.conv(&format!("{name}.out_layers.3"), o, o, 3, 1)?,
                    skip: match i != o {
                        true => Some(self.conv(&format!("{name}.skip_connection"), i, o, 1, 1)?),
                        false => None,
                    },
                    resample: *resample,
                }))
            }
            Layer::Attention {
                name,
                channels,
                heads,
            } => {
                let c = *channels;
                Block::Attention(Box::new(Attention {
                    gamma: self.get(&format!("{name}.norm.weight"))?,
                    beta: self.get(&format!("{name}.norm.bias"))?,
                    qkv: self.conv(&format!("{name}.qkv"), c, 3 * c, 1, 1)?,
                    proj: self.conv(&format!("{name}.proj_out"), c, c, 1, 1)?,
                    heads: *heads,
                }))
            }
            Layer::Down {
                name,
                channels,
                conv,
            } => Block::Down(match conv {
                true => Some(self.conv(name, *channels, *channels, 3, 2)?),
                false => None,
            }),
            Layer::Up {
                name,
                channels,
                conv,
            } => Block::Up(match conv {
                true => Some(self.conv(name, *channels, *channels, 3, 1)?),
                false => None,
            }),
        })
    }
}

impl AdmCpu {
    /// The CPU copy of a network, or None where these kernels do not apply (diffusers'
    /// bottom-right padding of the downsampling convolution).
    pub fn new(cfg: &AdmConfig, w: &HostWeights) -> Option<Self> {
        if cfg.down_padding != crate::priors::adm_layout::DownPadding::Symmetric {
            return None;
        }
        let t = Take { w, cfg };
        let layout = cfg.layout();
        let e = cfg.emb_dim();
        let blocks = |layers: &[Layer]| {
            layers
                .iter()
                .map(|l| t.block(l))
                .collect::<Option<Vec<_>>>()
        };
        Some(Self {
            cfg: cfg.clone(),
            time1: t.lin("time_embed.0", cfg.model_channels, e)?,
            time2: t.lin("time_embed.2", e, e)?,
            label: match cfg.num_classes {
                Some(_) => Some(t.get("label_emb.weight")?),
                None => None,
            },
            input: layout
                .input
                .iter()
                .map(|b| blocks(b))
                .collect::<Option<_>>()?,
            middle: blocks(&layout.middle)?,
            output: layout
                .output
                .iter()
                .map(|b| blocks(b))
                .collect::<Option<_>>()?,
            out_norm: t.norm("out.0")?,
            out_conv: t.conv("out.2", layout.out_in, cfg.out_channels, 3, 1)?,
        })
    }

    /// F(x, t, class) for a batch [B, C, H, W] on the host.
    pub fn forward(
        &self,
        x: &[f32],
        [b, c, h, w]: [usize; 4],
        t: &[f64],
        class: Option<&[usize]>,
    ) -> (Vec<f32>, [usize; 4]) {
        let threads = rayon::current_num_threads();
        let inner = if b >= threads { 1 } else { threads };
        let per = c * h * w;
        let outs = per_image(b, |k| {
            let act = Act {
                c,
                h,
                w,
                v: x[k * per..(k + 1) * per].to_vec(),
            };
            self.forward_one(act, t[k], class.map(|cl| cl[k]), inner)
        });
        let o = self.cfg.out_channels;
        let mut out = Vec::with_capacity(b * o * h * w);
        for a in outs {
            out.extend(a.v);
        }
        (out, [b, o, h, w])
    }

    pub(super) fn groups(&self) -> usize {
        self.cfg.groups
    }

    pub(super) fn order(&self) -> AttentionOrder {
        self.cfg.order
    }

    pub fn out_channels(&self) -> usize {
        self.cfg.out_channels
    }

    pub(super) fn embedding(&self, t: f64, class: Option<usize>) -> Vec<f32> {
        let feat = self.cfg.time_features(t);
        let mut h = self.time1.apply(&feat);
        silu_in_place(&mut h);
        let mut emb = self.time2.apply(&h);
        if let (Some(table), Some(k)) = (&self.label, class) {
            let e = emb.len();
            for (v, l) in emb.iter_mut().zip(&table[k * e..(k + 1) * e]) {
                *v += l;
            }
        }
        // Every residual block reads silu(emb).
        silu_in_place(&mut emb);
        emb
    }

    fn forward_one(&self, x: Act, t: f64, class: Option<usize>, threads: usize) -> Act {
        let emb = self.embedding(t, class);
        let mut kept = Vec::with_capacity(self.input.len());
        let mut h = x;
        for block in &self.input {
            h = self.run(block, h, &emb, threads);
            kept.push(h.clone());
        }
        h = self.run(&self.middle, h, &emb, threads);
        for block in &self.output {
            if let Some(skip) = kept.pop() {
                h.v.extend(skip.v);
                h.c += skip.c;
            }
            h = self.run(block, h, &emb, threads);
        }
        let (n, _) = self.out_norm.apply(&h, false);
        self.out_conv.apply(&n, threads)
    }

    fn run(&self, blocks: &[Block], mut h: Act, emb: &[f32], threads: usize) -> Act {
        for b in blocks {
            h = match b {
                Block::Conv(c) | Block::Down(Some(c)) => c.apply(&h, threads),
                Block::Down(None) => pool2(&h),
                Block::Up(c) => {
                    let u = upsample2(&h);
                    match c {
                        Some(c) => c.apply(&u, threads),
                        None => u,
                    }
                }
                Block::Res(r) => self.res(r, h, emb, threads),
                Block::Attention(a) => self.attention(a, h, threads),
            };
        }
        h
    }

    fn res(&self, r: &Res, x: Act, emb: &[f32], threads: usize) -> Act {
        let (t1, _) = r.norm1.apply(&x, false);
        let mut h = r.conv1.apply(&resample(t1, r.resample), threads);
        let x = resample(x, r.resample);
        let norm = self.second_norm(r, &mut h, emb);
        let (t2, _) = norm.apply(&h, false);
        let mut h = r.conv2.apply(&t2, threads);
        let s_owned;
        let s = match &r.skip {
            Some(c) => {
                s_owned = c.apply(&x, threads);
                &s_owned.v
            }
            None => &x.v,
        };
        for (a, b) in h.v.iter_mut().zip(s) {
            *a += b;
        }
        h
    }

    /// The second normalisation of a residual block for this picture: with scale-shift, the
    /// embedding folded into its affine weights; without, the embedding added to `h` first.
    pub(super) fn second_norm(&self, r: &Res, h: &mut Act, emb: &[f32]) -> Norm {
        let e = r.emb.apply(emb);
        let o = h.c;
        let (g, b) = &r.norm2;
        let (gamma, beta) = if self.cfg.scale_shift {
            let (scale, shift) = e.split_at(o);
            (
                g.iter().zip(scale).map(|(g, s)| g * (1.0 + s)).collect(),
                (0..o).map(|c| b[c] * (1.0 + scale[c]) + shift[c]).collect(),
            )
        } else {
            let hw = h.h * h.w;
            for (ch, s) in e.iter().enumerate() {
                h.v[ch * hw..(ch + 1) * hw].iter_mut().for_each(|v| *v += s);
            }
            (g.clone(), b.clone())
        };
        Norm {
            gamma,
            beta,
            groups: self.cfg.groups,
            eps: self.cfg.norm_eps,
            g: 0,
        }
    }

    fn attention(&self, a: &Attention, x: Act, threads: usize) -> Act {
        let (n, _, _) = self.plain_norm(a, &x);
        let qkv = a.qkv.apply(&n, threads).v;
        let (out, _) = self.attend(a, &qkv, x.c, x.h * x.w, threads);
        let a_act = Act {
            c: x.c,
            h: x.h,
            w: x.w,
            v: out,
        };
        let mut y = a.proj.apply(&a_act, threads);
        for (o, xi) in y.v.iter_mut().zip(&x.v) {
            *o += xi;
        }
        y
    }

    /// The attention's GroupNorm (no activation), with x̂ and 1/σ per group.
    pub(super) fn plain_norm(&self, a: &Attention, x: &Act) -> (Act, Vec<f32>, Vec<f32>) {
        group_norm(x, &a.gamma, &a.beta, self.cfg.groups, self.cfg.norm_eps)
    }

    /// Every head's softmax(qᵀk/√d) applied to v, from the [3C, T] projections: the [C, T]
    /// result and each head's weights.
    pub(super) fn attend(
        &self,
        a: &Attention,
        qkv: &[f32],
        c: usize,
        t: usize,
        threads: usize,
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let ch = c / a.heads;
        let scale = 1.0 / (ch as f32).sqrt();
        let mut out = vec![0.0f32; c * t];
        let mut weights = Vec::with_capacity(a.heads);
        for hd in 0..a.heads {
            let (q0, k0, v0) = match self.cfg.order {
                AttentionOrder::Legacy => (3 * ch * hd, 3 * ch * hd + ch, 3 * ch * hd + 2 * ch),
                AttentionOrder::QkvFirst => (ch * hd, c + ch * hd, 2 * c + ch * hd),
            };
            let q = &qkv[q0 * t..(q0 + ch) * t];
            let k = &qkv[k0 * t..(k0 + ch) * t];
            let v = &qkv[v0 * t..(v0 + ch) * t];
            // w[t, s] = Σ_c q[c, t] k[c, s]: qᵀ (column-major view of q) times k.
            let mut w = matmul_new((q, 1, t), k, t, t, ch, threads);
            super::adm_back::softmax_rows(&mut w, t, scale);
            // a[c, t] = Σ_s v[c, s] w[t, s]: v times wᵀ.
            let dst = &mut out[hd * ch * t..(hd + 1) * ch * t];
            matmul_acc(dst, (v, t, 1), (&w, 1, t), ch, t, t, threads);
            weights.push(w);
        }
        (out, weights)
    }
}

/// GroupNorm with affine weights (no activation), statistics in f64; with x̂ and 1/σ.
fn group_norm(
    x: &Act,
    gamma: &[f32],
    beta: &[f32],
    groups: usize,
    eps: f64,
) -> (Act, Vec<f32>, Vec<f32>) {
    let hw = x.h * x.w;
    let per = x.c / groups.max(1);
    let mut v = Vec::with_capacity(x.v.len());
    let mut xhat = Vec::with_capacity(x.v.len());
    let mut rstd = Vec::with_capacity(groups);
    for g in 0..groups {
        let src = &x.v[g * per * hw..(g + 1) * per * hw];
        let n = src.len() as f64;
        let mean = src.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
        let var = src
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let r = 1.0 / (var + eps).sqrt();
        rstd.push(r as f32);
        xhat.extend(src.iter().map(|s| ((f64::from(*s) - mean) * r) as f32));
        for cc in 0..per {
            let ch = g * per + cc;
            let (scale, shift) = (
                (r * f64::from(gamma[ch])) as f32,
                beta[ch] - (mean * r) as f32 * gamma[ch],
            );
            v.extend(
                src[cc * hw..(cc + 1) * hw]
                    .iter()
                    .map(|s| s * scale + shift),
            );
        }
    }
    (
        Act {
            c: x.c,
            h: x.h,
            w: x.w,
            v,
        },
        xhat,
        rstd,
    )
}

/// A residual block's resampling of its input (and of its skip path).
pub(super) fn resample(a: Act, r: Resample) -> Act {
    match r {
        Resample::None => a,
        Resample::Down => pool2(&a),
        Resample::Up => upsample2(&a),
    }
}

/// 2×2 average pooling (H, W even).
pub(super) fn pool2(x: &Act) -> Act {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut out = Act::zeros(x.c, h, w);
    for ch in 0..x.c {
        for y in 0..h {
            let r0 = &x.v[(ch * x.h + 2 * y) * x.w..][..x.w];
            let r1 = &x.v[(ch * x.h + 2 * y + 1) * x.w..][..x.w];
            for (i, d) in out.v[(ch * h + y) * w..][..w].iter_mut().enumerate() {
                *d = 0.25 * (r0[2 * i] + r0[2 * i + 1] + r1[2 * i] + r1[2 * i + 1]);
            }
        }
    }
    out
}
