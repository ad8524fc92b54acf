//! The architecture of the field's diffusion U-Nets (guided-diffusion's ADM `UNetModel`, the
//! consistency models' copy of it, diffusers' `UNet2DModel`), as one description: the layers in
//! order, each with its weights' names (guided-diffusion's, the canonical names an imported
//! model is stored under) and shapes. The importers check a file against [`AdmConfig::expected`];
//! the network ([`super::adm`]) is built from the same layout, so the two cannot disagree.

use serde::{Deserialize, Serialize};

/// How an attention block splits its `qkv` projection into heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttentionOrder {
    /// guided-diffusion's default: heads first, then q, k, v inside each head.
    Legacy,
    /// `use_new_attention_order` (consistency models, diffusers): q, k, v first, then heads.
    QkvFirst,
}

/// Padding of the stride-2 downsampling convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownPadding {
    /// One pixel on every side (guided-diffusion; diffusers with `downsample_padding: 1`).
    Symmetric,
    /// One pixel at the bottom and right only (diffusers with `downsample_padding: 0`).
    BottomRight,
}

/// The network, whatever file it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmConfig {
    /// The square picture size it was trained on.
    pub image_size: usize,
    pub in_channels: usize,
    /// 3, or 6 with learnt variances (the extra channels are not used).
    pub out_channels: usize,
    /// Width of the sinusoidal time features (guided-diffusion's `num_channels`).
    pub model_channels: usize,
    /// Channels per resolution level.
    pub channels: Vec<usize>,
    pub res_blocks: usize,
    /// Levels whose residual blocks are followed by attention (the decoder mirrors them).
    pub attention: Vec<bool>,
    pub mid_attention: bool,
    /// Heads: `Some(c)` channels per head, else a fixed count (encoder, decoder).
    pub head_channels: Option<usize>,
    pub heads: usize,
    pub heads_up: usize,
    pub order: AttentionOrder,
    pub scale_shift: bool,
    /// Residual blocks that resample (guided-diffusion's `resblock_updown`) instead of
    /// resampling convolutions.
    pub resblock_updown: bool,
    pub down_padding: DownPadding,
    pub groups: usize,
    pub norm_eps: f64,
    /// Time features [cos, sin] (guided-diffusion) or [sin, cos] (diffusers by default).
    pub cos_first: bool,
    /// Diffusers' `freq_shift`: frequencies exp(−ln 10⁴·i/(half − shift)).
    pub freq_shift: f64,
    /// Class-conditional: the number of classes of its label embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
}

/// How a block changes resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    None,
    Down,
    Up,
}

/// One layer of the network, with the name its weights are stored under.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// The first convolution (`input_blocks.0.0`).
    Conv {
        name: String,
        cin: usize,
        cout: usize,
    },
    Res {
        name: String,
        cin: usize,
        cout: usize,
        resample: Resample,
    },
    Attention {
        name: String,
        channels: usize,
        heads: usize,
    },
    /// A stride-2 convolution (`op`) or, without weights, 2×2 average pooling.
    Down {
        name: String,
        channels: usize,
        conv: bool,
    },
    /// Nearest 2× upsampling, then a convolution (`conv`) when it has one.
    Up {
        name: String,
        channels: usize,
        conv: bool,
    },
}

/// The layers in order: input blocks (each output kept for a skip connection), middle,
/// output blocks (each starting by concatenating the last kept output).
#[derive(Debug, Clone)]
pub struct Layout {
    pub input: Vec<Vec<Layer>>,
    pub middle: Vec<Layer>,
    pub output: Vec<Vec<Layer>>,
    pub out_in: usize,
}

impl AdmConfig {
    /// The sinusoidal features of a (possibly fractional) timestep, `model_channels` wide.
    pub fn time_features(&self, t: f64) -> Vec<f32> {
        let half = self.model_channels / 2;
        let denom = half as f64 - self.freq_shift;
        let args: Vec<f64> = (0..half)
            .map(|i| t * (-(10_000f64.ln()) * i as f64 / denom).exp())
            .collect();
        let (cos, sin) = (args.iter().map(|a| a.cos()), args.iter().map(|a| a.sin()));
        if self.cos_first {
            cos.chain(sin).map(|v| v as f32).collect()
        } else {
            sin.chain(cos).map(|v| v as f32).collect()
        }
    }

    pub fn emb_dim(&self) -> usize {
        4 * self.model_channels
    }

    /// The levels' downsampling factor 2^(levels−1): pictures must be a multiple of it.
    pub fn multiple(&self) -> usize {
        1 << (self.channels.len().saturating_sub(1))
    }

    fn attention_heads(&self, ch: usize, up: bool) -> usize {
        match self.head_channels {
            Some(c) if c > 0 => (ch / c).max(1),
            _ if up => self.heads_up,
            _ => self.heads,
        }
    }

    fn attention(&self, name: String, ch: usize, up: bool) -> Layer {
        Layer::Attention {
            name,
            channels: ch,
            heads: self.attention_heads(ch, up),
        }
    }

    /// Mirrors guided-diffusion's `UNetModel.__init__` loop for loop.
    pub fn layout(&self) -> Layout {
        let levels = self.channels.len();
        let res = |name: String, cin, cout, resample| Layer::Res {
            name,
            cin,
            cout,
            resample,
        };
        let mut ch = self.channels[0];
        let mut input = vec![vec![Layer::Conv {
            name: "input_blocks.0.0".into(),
            cin: self.in_channels,
            cout: ch,
        }]];
        let mut kept = vec![ch];
        for (level, &c) in self.channels.iter().enumerate() {
            for _ in 0..self.res_blocks {
                let i = input.len();
                let mut layers = vec![res(format!("input_blocks.{i}.0"), ch, c, Resample::None)];
                ch = c;
                if self.attention[level] {
                    layers.push(self.attention(format!("input_blocks.{i}.1"), ch, false));
                }
                input.push(layers);
                kept.push(ch);
            }
            if level + 1 != levels {
                let i = input.len();
                let name = format!("input_blocks.{i}.0");
                input.push(vec![if self.resblock_updown {
                    res(name, ch, ch, Resample::Down)
                } else {
                    Layer::Down {
                        name: format!("{name}.op"),
                        channels: ch,
                        conv: true,
                    }
                }]);
                kept.push(ch);
            }
        }
        let mut middle = vec![res("middle_block.0".into(), ch, ch, Resample::None)];
        if self.mid_attention {
            middle.push(self.attention("middle_block.1".into(), ch, false));
            middle.push(res("middle_block.2".into(), ch, ch, Resample::None));
        } else {
            middle.push(res("middle_block.1".into(), ch, ch, Resample::None));
        }
        let mut output = vec![];
        for level in (0..levels).rev() {
            let c = self.channels[level];
            for r in 0..=self.res_blocks {
                let i = output.len();
                let skip = kept.pop().unwrap_or(0);
                let mut layers = vec![res(
                    format!("output_blocks.{i}.0"),
                    ch + skip,
                    c,
                    Resample::None,
                )];
                ch = c;
                if self.attention[level] {
                    layers.push(self.attention(format!("output_blocks.{i}.1"), ch, true));
                }
                if level > 0 && r == self.res_blocks {
                    let j = layers.len();
                    let name = format!("output_blocks.{i}.{j}");
                    layers.push(if self.resblock_updown {
                        res(name, ch, ch, Resample::Up)
                    } else {
                        Layer::Up {
                            name: format!("{name}.conv"),
                            channels: ch,
                            conv: true,
                        }
                    });
                }
                output.push(layers);
            }
        }
        Layout {
            input,
            middle,
            output,
            out_in: ch,
        }
    }

    /// Every weight the network reads, with its shape. Attention projections are 2-D here
    /// ([3C, C], [C, C]); the files' 3-D and 4-D forms are reshaped on import.
    pub fn expected(&self) -> Vec<(String, Vec<usize>)> {
        let e = self.emb_dim();
        let mut out: Vec<(String, Vec<usize>)> = vec![];
        let mut push = |name: String, shape: Vec<usize>| out.push((name, shape));
        let mc = self.model_channels;
        push("time_embed.0.weight".into(), vec![e, mc]);
        push("time_embed.0.bias".into(), vec![e]);
        push("time_embed.2.weight".into(), vec![e, e]);
        push("time_embed.2.bias".into(), vec![e]);
        if let Some(n) = self.num_classes {
            push("label_emb.weight".into(), vec![n, e]);
        }
        let layout = self.layout();
        let all = layout
            .input
            .iter()
            .flatten()
            .chain(&layout.middle)
            .chain(layout.output.iter().flatten());
        for layer in all {
            layer_weights(layer, e, self.scale_shift, &mut push);
        }
        let o = layout.out_in;
        push("out.0.weight".into(), vec![o]);
        push("out.0.bias".into(), vec![o]);
        push("out.2.weight".into(), vec![self.out_channels, o, 3, 3]);
        push("out.2.bias".into(), vec![self.out_channels]);
        out
    }

    /// Checks what a config file can get wrong before any weight is read.
    pub fn check(&self) -> Result<(), String> {
        let levels = self.channels.len();
        if levels == 0 || self.attention.len() != levels {
            return Err(
                "the network needs at least one level, with attention flags per level".into(),
            );
        }
        if self.res_blocks == 0 || self.model_channels == 0 || self.in_channels == 0 {
            return Err("num_res_blocks, num_channels and in_channels must be positive".into());
        }
        if !self.model_channels.is_multiple_of(2) {
            return Err(format!("num_channels {} must be even", self.model_channels));
        }
        if self.groups == 0 {
            return Err("norm_num_groups must be positive".into());
        }
        for &c in &self.channels {
            if c == 0 || c % self.groups != 0 {
                return Err(format!(
                    "{c} channels cannot be split into {} normalisation groups",
                    self.groups
                ));
            }
            if let Some(hc) = self.head_channels.filter(|h| *h > 0)
                && c % hc != 0
            {
                return Err(format!(
                    "{c} channels are not a multiple of num_head_channels {hc}"
                ));
            }
        }
        if self.heads == 0 || self.heads_up == 0 {
            return Err("num_heads must be positive".into());
        }
        let m = self.multiple();
        if self.image_size == 0 || !self.image_size.is_multiple_of(m) {
            return Err(format!(
                "image_size {} is not a multiple of {m} (the levels' downsampling)",
                self.image_size
            ));
        }
        Ok(())
    }

    /// Multiply-adds × 2 of one forward pass on one H×W picture (convolutions, linear layers
    /// and attention products).
    pub fn flops(&self, h: usize, w: usize) -> f64 {
        let e = self.emb_dim() as f64;
        let layout = self.layout();
        let mut f = 2.0 * (self.model_channels as f64) * e + 2.0 * e * e;
        let mut area = (h * w) as f64;
        let conv = |i: usize, o: usize, k: f64, a: f64| 2.0 * k * (i * o) as f64 * a;
        let mut count = |layer: &Layer, area: &mut f64| match layer {
            Layer::Conv { cin, cout, .. } => f += conv(*cin, *cout, 9.0, *area),
            Layer::Res {
                cin,
                cout,
                resample,
                ..
            } => {
                let after = match resample {
                    Resample::Down => *area / 4.0,
                    Resample::Up => *area * 4.0,
                    Resample::None => *area,
                };
                f += conv(*cin, *cout, 9.0, after) + conv(*cout, *cout, 9.0, after);
                if cin != cout {
                    f += conv(*cin, *cout, 1.0, after);
                }
                f += 2.0 * e * (*cout as f64) * 2.0;
                *area = after;
            }
            Layer::Attention { channels, .. } => {
                let c = *channels as f64;
                f += 2.0 * 4.0 * c * c * *area + 2.0 * 2.0 * c * *area * *area;
            }
            Layer::Down {
                channels, conv: c, ..
            } => {
                *area /= 4.0;
                if *c {
                    f += conv(*channels, *channels, 9.0, *area);
                }
            }
            Layer::Up {
                channels, conv: c, ..
            } => {
                *area *= 4.0;
                if *c {
                    f += conv(*channels, *channels, 9.0, *area);
                }
            }
        };
        for l in layout.input.iter().flatten() {
            count(l, &mut area);
        }
        for l in &layout.middle {
            count(l, &mut area);
        }
        for l in layout.output.iter().flatten() {
            count(l, &mut area);
        }
        f + conv(layout.out_in, self.out_channels, 9.0, area)
    }
}

fn layer_weights(
    layer: &Layer,
    e: usize,
    scale_shift: bool,
    push: &mut impl FnMut(String, Vec<usize>),
) {
    let mut conv = |name: String, i: usize, o: usize, k: usize| {
        push(format!("{name}.weight"), vec![o, i, k, k]);
        push(format!("{name}.bias"), vec![o]);
    };
    match layer {
        Layer::Conv { name, cin, cout } => conv(name.clone(), *cin, *cout, 3),
        Layer::Res {
            name, cin, cout, ..
        } => {
            conv(format!("{name}.in_layers.2"), *cin, *cout, 3);
            conv(format!("{name}.out_layers.3"), *cout, *cout, 3);
            if cin != cout {
                conv(format!("{name}.skip_connection"), *cin, *cout, 1);
            }
            let emb_out = if scale_shift { 2 * cout } else { *cout };
            push(format!("{name}.in_layers.0.weight"), vec![*cin]);
            push(format!("{name}.in_layers.0.bias"), vec![*cin]);
            push(format!("{name}.emb_layers.1.weight"), vec![emb_out, e]);
            push(format!("{name}.emb_layers.1.bias"), vec![emb_out]);
            push(format!("{name}.out_layers.0.weight"), vec![*cout]);
            push(format!("{name}.out_layers.0.bias"), vec![*cout]);
        }
        Layer::Attention { name, channels, .. } => {
            let c = *channels;
            push(format!("{name}.norm.weight"), vec![c]);
            push(format!("{name}.norm.bias"), vec![c]);
            push(format!("{name}.qkv.weight"), vec![3 * c, c]);
            push(format!("{name}.qkv.bias"), vec![3 * c]);
            push(format!("{name}.proj_out.weight"), vec![c, c]);
            push(format!("{name}.proj_out.bias"), vec![c]);
        }
        Layer::Down {
            name,
            channels,
            conv: true,
        }
        | Layer::Up {
            name,
            channels,
            conv: true,
        } => conv(name.clone(), *channels, *channels, 3),
        Layer::Down { .. } | Layer::Up { .. } => {}
    }
}
