//! The ADM U-Net (guided-diffusion, consistency models, diffusers' UNet2DModel) on burn: the
//! raw network F(x, t[, class]) of an imported checkpoint, built from its [`AdmConfig`]'s layout
//! and the weights under their canonical names. Plain burn tensor operations, so it runs on
//! every backend and differentiates through autodiff (the samplers' VJPs).

use super::adm_layout::{AdmConfig, AttentionOrder, DownPadding, Layer, Resample};
use super::unet::upsample2;
use crate::error::{Error, Result};
use crate::tensor;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use std::collections::HashMap;

/// Host weights by canonical name: values (f32) and shape.
pub type HostWeights = HashMap<String, (Vec<f32>, Vec<usize>)>;

struct Conv {
    w: Tensor<4>,
    b: Tensor<1>,
    options: ConvOptions<2>,
}

impl Conv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(
            x,
            self.w.clone(),
            Some(self.b.clone()),
            self.options.clone(),
        )
    }
}

struct Norm {
    g: Tensor<1>,
    b: Tensor<1>,
    groups: usize,
    eps: f64,
}

impl Norm {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let g = self.groups;
        let x = x.reshape([n, g, (c / g) * h * w]);
        let mean = x.clone().mean_dim(2);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(2);
        let y = (centred / var.add_scalar(self.eps).sqrt()).reshape([n, c, h, w]);
        y * self.g.clone().reshape([1, c, 1, 1]) + self.b.clone().reshape([1, c, 1, 1])
    }
}

struct Linear {
    /// [in, out] (transposed from the file's [out, in]).
    w: Tensor<2>,
    b: Tensor<1>,
}

impl Linear {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let o = self.b.dims()[0];
        x.matmul(self.w.clone()) + self.b.clone().reshape([1, o])
    }
}

struct Res {
    norm1: Norm,
    conv1: Conv,
    emb: Linear,
    norm2: Norm,
    conv2: Conv,
    skip: Option<Conv>,
    resample: Resample,
    scale_shift: bool,
}

struct Attention {
    norm: Norm,
    qkv: Conv,
    proj: Conv,
    heads: usize,
    order: AttentionOrder,
}

enum Block {
    Conv(Conv),
    Res(Box<Res>),
    Attention(Box<Attention>),
    Down(Option<Conv>),
    Up(Option<Conv>),
}

/// The raw network of an imported checkpoint.
pub struct AdmNet {
    pub config: AdmConfig,
    time1: Linear,
    time2: Linear,
    label: Option<Tensor<2>>,
    input: Vec<Vec<Block>>,
    middle: Vec<Block>,
    output: Vec<Vec<Block>>,
    out_norm: Norm,
    out_conv: Conv,
    /// The CPU inference path on the flex device (None elsewhere, or where it does not apply).
    cpu: Option<std::sync::Arc<super::unet_cpu::adm::AdmCpu>>,
}

struct Loader<'a> {
    weights: &'a mut HostWeights,
    device: &'a Device,
    groups: usize,
    eps: f64,
}

impl Loader<'_> {
    fn take<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let (values, _) = self
            .weights
            .remove(name)
            .ok_or_else(|| Error::invalid("imported model", format!("no weight '{name}'")))?;
        if values.len() != shape.iter().product::<usize>() {
            return Err(Error::shape(name.to_string(), shape, values.len()));
        }
        Ok(tensor::from_vec(values, shape, self.device))
    }

    fn conv(&mut self, name: &str, i: usize, o: usize, k: usize, stride: usize) -> Result<Conv> {
        self.conv_padded(name, i, o, k, stride, [(k / 2, k / 2); 2])
    }

    fn conv_padded(
        &mut self,
        name: &str,
        i: usize,
        o: usize,
        k: usize,
        stride: usize,
        padding: [(usize, usize); 2],
    ) -> Result<Conv> {
        Ok(Conv {
            w: self.take(&format!("{name}.weight"), [o, i, k, k])?,
            b: self.take(&format!("{name}.bias"), [o])?,
            options: ConvOptions::new_with_padding([stride, stride], padding, [1, 1], 1),
        })
    }

    fn norm(&mut self, name: &str, c: usize) -> Result<Norm> {
        Ok(Norm {
            g: self.take(&format!("{name}.weight"), [c])?,
            b: self.take(&format!("{name}.bias"), [c])?,
            groups: self.groups,
            eps: self.eps,
        })
    }

    fn linear(&mut self, name: &str, i: usize, o: usize) -> Result<Linear> {
        let w: Tensor<2> = self.take(&format!("{name}.weight"), [o, i])?;
        Ok(Linear {
            w: w.transpose(),
            b: self.take(&format!("{name}.bias"), [o])?,
        })
    }

    fn block(&mut self, layer: &Layer, cfg: &AdmConfig) -> Result<Block> {
        let e = cfg.emb_dim();
        Ok(match layer {
            Layer::Conv { name, cin, cout } => Block::Conv(self.conv(name, *cin, *cout, 3, 1)?),
            Layer::Res {
                name,
                cin,
                cout,
                resample,
            } => {
                let (i, o) = (*cin, *cout);
                let emb_out = if cfg.scale_shift { 2 * o } else { o };
                Block::Res(Box::new(Res {
                    norm1: self.norm(&format!("{name}.in_layers.0"), i)?,
                    conv1: self.conv(&format!("{name}.in_layers.2"), i, o, 3, 1)?,
                    emb: self.linear(&format!("{name}.emb_layers.1"), e, emb_out)?,
                    norm2: self.norm(&format!("{name}.out_layers.0"), o)?,
                    conv2: self.conv(&format!("{name}.out_layers.3"), o, o, 3, 1)?,
                    skip: match i != o {
                        true => Some(self.conv(&format!("{name}.skip_connection"), i, o, 1, 1)?),
                        false => None,
                    },
                    resample: *resample,
                    scale_shift: cfg.scale_shift,
                }))
            }
            Layer::Attention {
                name,
                channels,
                heads,
            } => {
                let c = *channels;
                let qkv: Tensor<2> = self.take(&format!("{name}.qkv.weight"), [3 * c, c])?;
                let proj: Tensor<2> = self.take(&format!("{name}.proj_out.weight"), [c, c])?;
                let one = |w: Tensor<2>, b: Tensor<1>| {
                    let [o, i] = w.dims();
                    Conv {
                        w: w.reshape([o, i, 1, 1]),
                        b,
                        options: ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
                    }
                };
                Block::Attention(Box::new(Attention {
                    norm: self.norm(&format!("{name}.norm"), c)?,
                    qkv: one(qkv, self.take(&format!("{name}.qkv.bias"), [3 * c])?),
                    proj: one(proj, self.take(&format!("{name}.proj_out.bias"), [c])?),
                    heads: *heads,
                    order: cfg.order,
                }))
            }
            Layer::Down {
                name,
                channels,
                conv,
            } => Block::Down(match conv {
                true => {
                    let pad = match cfg.down_padding {
                        DownPadding::Symmetric => [(1, 1); 2],
                        DownPadding::BottomRight => [(0, 1); 2],
                    };
                    Some(self.conv_padded(name, *channels, *channels, 3, 2, pad)?)
                }
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

impl AdmNet {
    /// Builds the network from host weights (every weight of the layout must be there; the
    /// importer has checked them, this only refuses what it cannot use).
    pub fn new(config: AdmConfig, mut weights: HostWeights, device: &Device) -> Result<Self> {
        let cpu = match *device == Device::flex() {
            true => super::unet_cpu::adm::AdmCpu::new(&config, &weights).map(std::sync::Arc::new),
            false => None,
        };
        let layout = config.layout();
        let e = config.emb_dim();
        let mut l = Loader {
            weights: &mut weights,
            device,
            groups: config.groups,
            eps: config.norm_eps,
        };
        let time1 = l.linear("time_embed.0", config.model_channels, e)?;
        let time2 = l.linear("time_embed.2", e, e)?;
        let label = match config.num_classes {
            Some(n) => Some(l.take("label_emb.weight", [n, e])?),
            None => None,
        };
        let blocks = |layers: &[Layer], l: &mut Loader| -> Result<Vec<Block>> {
            layers.iter().map(|x| l.block(x, &config)).collect()
        };
        let input = layout
            .input
            .iter()
            .map(|b| blocks(b, &mut l))
            .collect::<Result<Vec<_>>>()?;
        let middle = blocks(&layout.middle, &mut l)?;
        let output = layout
            .output
            .iter()
            .map(|b| blocks(b, &mut l))
            .collect::<Result<Vec<_>>>()?;
        let out_norm = l.norm("out.0", layout.out_in)?;
        let out_conv = l.conv("out.2", layout.out_in, config.out_channels, 3, 1)?;
        Ok(Self {
            config,
            time1,
            time2,
            label,
            input,
            middle,
            output,
            out_norm,
            out_conv,
            cpu,
        })
    }

    /// The CPU path, where this network has one (the flex device).
    pub fn cpu(&self) -> Option<std::sync::Arc<super::unet_cpu::adm::AdmCpu>> {
        self.cpu.clone()
    }

    /// Without the CPU path (tests compare the two).
    pub fn without_cpu(mut self) -> Self {
        self.cpu = None;
        self
    }

    /// The sinusoidal features of (possibly fractional) timesteps, [B, model_channels].
    fn time_features(&self, t: &[f64], device: &Device) -> Tensor<2> {
        let dim = self.config.model_channels;
        let out: Vec<f32> = t
            .iter()
            .flat_map(|&ti| self.config.time_features(ti))
            .collect();
        tensor::from_vec(out, [t.len(), dim], device)
    }

    /// F(x, t, class): x [B, C, H, W] with H, W multiples of [`AdmConfig::multiple`]; one
    /// timestep per picture; a class per picture for a class-conditional network.
    pub fn forward(&self, x: Tensor<4>, t: &[f64], class: Option<&[usize]>) -> Result<Tensor<4>> {
        let device = x.device();
        if let Some(n) = self.label.as_ref().map(|l| l.dims()[0]) {
            let classes = class.ok_or_else(|| {
                Error::invalid("class", "the network is class-conditional: give a class")
            })?;
            if let Some(bad) = classes.iter().find(|c| **c >= n) {
                return Err(Error::invalid(
                    "class",
                    format!(
                        "{bad} is not one of the network's {n} classes (0–{})",
                        n - 1
                    ),
                ));
            }
        }
        if let Some(cpu) = self.cpu.as_ref().filter(|_| !x.is_autodiff()) {
            let dims = x.dims();
            let host = tensor::to_vec(&x)?;
            let (out, shape) = cpu.forward(&host, dims, t, class);
            return Ok(tensor::from_vec(out, shape, &device));
        }
        let mut emb = self
            .time2
            .forward(silu(self.time1.forward(self.time_features(t, &device))));
        if let (Some(table), Some(classes)) = (&self.label, class) {
            let idx: Vec<i64> = classes.iter().map(|c| *c as i64).collect();
            let idx = Tensor::<1, burn::tensor::Int>::from_ints(idx.as_slice(), &device);
            emb = emb + table.clone().select(0, idx);
        }
        let mut kept = Vec::with_capacity(self.input.len());
        let mut h = x;
        for block in &self.input {
            h = run(block, h, &emb);
            kept.push(h.clone());
        }
        h = run(&self.middle, h, &emb);
        for block in &self.output {
            let skip = kept
                .pop()
                .ok_or_else(|| Error::invalid("imported model", "unbalanced skip connections"))?;
            h = run(block, Tensor::cat(vec![h, skip], 1), &emb);
        }
        Ok(self.out_conv.forward(silu(self.out_norm.forward(h))))
    }
}

fn run(blocks: &[Block], mut h: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
    for b in blocks {
        h = match b {
            Block::Conv(c) => c.forward(h),
            Block::Res(r) => r.forward(h, emb.clone()),
            Block::Attention(a) => a.forward(h),
            Block::Down(Some(c)) => c.forward(h),
            Block::Down(None) => pool2(h),
            Block::Up(c) => {
                let up = upsample2(h);
                match c {
                    Some(c) => c.forward(up),
                    None => up,
                }
            }
        };
    }
    h
}

impl Res {
    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let resample = |t: Tensor<4>| match self.resample {
            Resample::None => t,
            Resample::Down => pool2(t),
            Resample::Up => upsample2(t),
        };
        let h = silu(self.norm1.forward(x.clone()));
        let h = self.conv1.forward(resample(h));
        let x = resample(x);
        let [b, o, _, _] = h.dims();
        let e = self.emb.forward(silu(emb));
        let h = if self.scale_shift {
            let e = e.reshape([b, 2 * o, 1, 1]);
            let scale = e.clone().slice([0..b, 0..o]);
            let shift = e.slice([0..b, o..2 * o]);
            self.norm2.forward(h) * scale.add_scalar(1.0) + shift
        } else {
            self.norm2.forward(h + e.reshape([b, o, 1, 1]))
        };
        let h = self.conv2.forward(silu(h));
        let s = match &self.skip {
            Some(c) => c.forward(x),
            None => x,
        };
        s + h
    }
}

impl Attention {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, hh, ww] = x.dims();
        let t = hh * ww;
        let heads = self.heads;
        let ch = c / heads;
        let qkv = self
            .qkv
            .forward(self.norm.forward(x.clone()))
            .reshape([b, 3 * c, t]);
        let (q, k, v) = match self.order {
            AttentionOrder::Legacy => {
                let r = qkv.reshape([b * heads, 3 * ch, t]);
                let n = b * heads;
                (
                    r.clone().slice([0..n, 0..ch]),
                    r.clone().slice([0..n, ch..2 * ch]),
                    r.slice([0..n, 2 * ch..3 * ch]),
                )
            }
            AttentionOrder::QkvFirst => {
                let part = |i: usize| {
                    qkv.clone()
                        .slice([0..b, i * c..(i + 1) * c])
                        .reshape([b * heads, ch, t])
                };
                (part(0), part(1), part(2))
            }
        };
        let scale = 1.0 / (ch as f64).sqrt().sqrt();
        let w = q
            .mul_scalar(scale)
            .swap_dims(1, 2)
            .matmul(k.mul_scalar(scale));
        let w = softmax(w, 2);
        let a = v.matmul(w.swap_dims(1, 2)).reshape([b, c, hh, ww]);
        x + self.proj.forward(a)
    }
}

/// 2×2 average pooling (H, W even).
fn pool2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2])
        .mean_dim(5)
        .mean_dim(3)
        .reshape([b, c, h / 2, w / 2])
}
