//! Hugging Face diffusers `UNet2DModel` folders (`config.json`, `diffusion_pytorch_model.
//! safetensors` or `.bin`, `scheduler/scheduler_config.json`). The network is the same U-Net as
//! guided-diffusion's, with other names: its blocks map one to one onto [`AdmConfig`]'s layout,
//! its separate q, k, v projections are stacked into one `qkv` (q, k, v first: the new order).

use super::SourceTensor;
use crate::priors::adm_layout::{AdmConfig, AttentionOrder, DownPadding};
use crate::priors::parameterisation::{BetaSchedule, Parameterisation, Prediction, TimestepRule};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

pub struct Described {
    pub network: AdmConfig,
    pub layers_per_block: usize,
}

fn get<'a>(cfg: &'a Value, key: &str) -> Option<&'a Value> {
    cfg.get(key).filter(|v| !v.is_null())
}

fn uint(cfg: &Value, key: &str, default: usize) -> Result<usize, String> {
    match get(cfg, key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| format!("'{key}' must be a non-negative integer, not {v}")),
    }
}

fn strings(cfg: &Value, key: &str) -> Result<Vec<String>, String> {
    get(cfg, key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("'{key}' is missing"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| format!("'{key}' must list names"))
        })
        .collect()
}

/// Reads `config.json`; refuses what UNet2DModel can do that this program does not.
pub fn parse_config(text: &str) -> Result<Described, String> {
    let cfg: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let class = get(&cfg, "_class_name")
        .and_then(Value::as_str)
        .unwrap_or("UNet2DModel");
    if class != "UNet2DModel" {
        return Err(format!(
            "'_class_name' is {class}: only UNet2DModel is supported"
        ));
    }
    let channels: Vec<usize> = get(&cfg, "block_out_channels")
        .and_then(Value::as_array)
        .ok_or("'block_out_channels' is missing")?
        .iter()
        .map(|v| {
            v.as_u64()
                .map(|v| v as usize)
                .ok_or("'block_out_channels' must list integers")
        })
        .collect::<Result<_, _>>()?;
    let down = strings(&cfg, "down_block_types")?;
    let up = strings(&cfg, "up_block_types")?;
    if down.len() != channels.len() || up.len() != channels.len() {
        return Err(
            "'down_block_types', 'up_block_types' and 'block_out_channels' differ in length".into(),
        );
    }
    let mut attention = vec![];
    for (i, d) in down.iter().enumerate() {
        let a = match d.as_str() {
            "DownBlock2D" => false,
            "AttnDownBlock2D" => true,
            other => {
                return Err(format!(
                    "down block '{other}' is not supported (DownBlock2D, AttnDownBlock2D)"
                ));
            }
        };
        let mirror = &up[channels.len() - 1 - i];
        let b = match mirror.as_str() {
            "UpBlock2D" => false,
            "AttnUpBlock2D" => true,
            other => {
                return Err(format!(
                    "up block '{other}' is not supported (UpBlock2D, AttnUpBlock2D)"
                ));
            }
        };
        if a != b {
            return Err(format!(
                "up block '{mirror}' does not mirror down block '{d}'"
            ));
        }
        attention.push(a);
    }
    let refuse_unless = |key: &str, ok: &[&str], default: &str| -> Result<(), String> {
        let v = get(&cfg, key).map(|v| v.as_str().unwrap_or("?").to_string());
        let v = v.unwrap_or_else(|| default.to_string());
        if ok.contains(&v.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "'{key}' is {v}: only {} is supported",
                ok.join(" or ")
            ))
        }
    };
    refuse_unless("act_fn", &["silu", "swish"], "silu")?;
    refuse_unless("time_embedding_type", &["positional"], "positional")?;
    refuse_unless(
        "resnet_time_scale_shift",
        &["default", "scale_shift"],
        "default",
    )?;
    refuse_unless("downsample_type", &["conv"], "conv")?;
    refuse_unless("upsample_type", &["conv"], "conv")?;
    refuse_unless("mid_block_type", &["UNetMidBlock2D"], "UNetMidBlock2D")?;
    for key in [
        "class_embed_type",
        "num_class_embeds",
        "time_embedding_dim",
        "attn_norm_num_groups",
    ] {
        if let Some(v) = get(&cfg, key) {
            return Err(format!("'{key}' is {v}: not supported (leave it null)"));
        }
    }
    if get(&cfg, "add_attention").and_then(Value::as_bool) == Some(false) {
        return Err("'add_attention' false is not supported".into());
    }
    if get(&cfg, "center_input_sample").and_then(Value::as_bool) == Some(true) {
        return Err("'center_input_sample' true is not supported".into());
    }
    let scale = get(&cfg, "mid_block_scale_factor")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    if scale != 1.0 {
        return Err(format!(
            "'mid_block_scale_factor' {scale} is not supported (1 only)"
        ));
    }
    let head_dim = match get(&cfg, "attention_head_dim") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or("'attention_head_dim' must be an integer or null")? as usize,
        ),
    };
    let size = match get(&cfg, "sample_size") {
        Some(Value::Array(a)) => a.first().and_then(Value::as_u64).unwrap_or(0) as usize,
        Some(v) => v.as_u64().unwrap_or(0) as usize,
        None => 0,
    };
    let layers = uint(&cfg, "layers_per_block", 2)?;
    let network = AdmConfig {
        image_size: size,
        in_channels: uint(&cfg, "in_channels", 3)?,
        out_channels: uint(&cfg, "out_channels", 3)?,
        model_channels: channels.first().copied().unwrap_or(0),
        channels,
        res_blocks: layers,
        attention,
        mid_attention: true,
        // No head size: one head over all channels (UNet2DModel's `output_channel` default).
        head_channels: head_dim,
        heads: 1,
        heads_up: 1,
        order: AttentionOrder::QkvFirst,
        scale_shift: get(&cfg, "resnet_time_scale_shift").and_then(Value::as_str)
            == Some("scale_shift"),
        resblock_updown: false,
        down_padding: if uint(&cfg, "downsample_padding", 1)? == 0 {
            DownPadding::BottomRight
        } else {
            DownPadding::Symmetric
        },
        groups: uint(&cfg, "norm_num_groups", 32)?,
        norm_eps: get(&cfg, "norm_eps")
            .and_then(Value::as_f64)
            .unwrap_or(1e-5),
        cos_first: get(&cfg, "flip_sin_to_cos")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        freq_shift: get(&cfg, "freq_shift")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        num_classes: None,
    };
    network.check()?;
    if network.in_channels != 3 || network.out_channels != 3 {
        return Err("only 3-channel (colour) models are supported".into());
    }
    Ok(Described {
        network,
        layers_per_block: layers,
    })
}

/// Reads `scheduler_config.json` (DDPM's defaults when there is none).
pub fn parse_scheduler(text: Option<&str>) -> Result<Parameterisation, String> {
    let cfg: Value = match text {
        Some(t) => serde_json::from_str(t).map_err(|e| format!("not valid JSON: {e}"))?,
        None => Value::Null,
    };
    let steps = uint(&cfg, "num_train_timesteps", 1000)?;
    let start = get(&cfg, "beta_start")
        .and_then(Value::as_f64)
        .unwrap_or(1e-4);
    let end = get(&cfg, "beta_end")
        .and_then(Value::as_f64)
        .unwrap_or(0.02);
    let betas = match get(&cfg, "beta_schedule")
        .and_then(Value::as_str)
        .unwrap_or("linear")
    {
        "linear" => BetaSchedule::Linear { start, end },
        "scaled_linear" => BetaSchedule::ScaledLinear { start, end },
        "squaredcos_cap_v2" => BetaSchedule::Cosine,
        other => return Err(format!("beta_schedule '{other}' is not supported")),
    };
    if get(&cfg, "trained_betas").is_some() {
        return Err("'trained_betas' is not supported".into());
    }
    let prediction = match get(&cfg, "prediction_type")
        .and_then(Value::as_str)
        .unwrap_or("epsilon")
    {
        "epsilon" => Prediction::Epsilon,
        "v_prediction" => Prediction::V,
        "sample" => Prediction::Sample,
        other => return Err(format!("prediction_type '{other}' is not supported")),
    };
    Ok(Parameterisation::Ddpm {
        betas,
        steps,
        prediction,
        timesteps: TimestepRule::Fractional,
        rescale_timesteps: false,
    })
}

/// Older diffusers files name the attention's projections differently; diffusers renames them
/// on load, and so does this.
fn modern(part: &str) -> &str {
    match part {
        "query" => "to_q",
        "key" => "to_k",
        "value" => "to_v",
        "proj_attn" => "to_out.0",
        p => p,
    }
}

/// The canonical name of a diffusers tensor, or None for a q/k/v projection (stacked apart).
fn canonical(name: &str, l: usize, attention: &[bool]) -> Option<String> {
    let resnet = |rest: &str| -> Option<String> {
        let (layer, tail) = rest.split_once('.')?;
        let layer = match layer {
            "norm1" => "in_layers.0",
            "conv1" => "in_layers.2",
            "time_emb_proj" => "emb_layers.1",
            "norm2" => "out_layers.0",
            "conv2" => "out_layers.3",
            "conv_shortcut" => "skip_connection",
            _ => return None,
        };
        Some(format!("{layer}.{tail}"))
    };
    let attn = |rest: &str| -> Option<String> {
        let (layer, tail) = rest.rsplit_once('.')?;
        match modern(layer) {
            "group_norm" => Some(format!("norm.{tail}")),
            "to_out.0" => Some(format!("proj_out.{tail}")),
            _ => None,
        }
    };
    // Block names have five parts (`down_blocks.I.resnets.J.REST`), the middle block's four.
    let n = if name.starts_with("mid_block.") { 4 } else { 5 };
    let parts: Vec<&str> = name.splitn(n, '.').collect();
    let num = |s: &str| s.parse::<usize>().ok();
    match parts.as_slice() {
        ["time_embedding", "linear_1", t] => Some(format!("time_embed.0.{t}")),
        ["time_embedding", "linear_2", t] => Some(format!("time_embed.2.{t}")),
        ["conv_in", t] => Some(format!("input_blocks.0.0.{t}")),
        ["conv_norm_out", t] => Some(format!("out.0.{t}")),
        ["conv_out", t] => Some(format!("out.2.{t}")),
        ["down_blocks", i, "resnets", j, rest] => {
            let k = 1 + num(i)? * (l + 1) + num(j)?;
            Some(format!("input_blocks.{k}.0.{}", resnet(rest)?))
        }
        ["down_blocks", i, "attentions", j, rest] => {
            let k = 1 + num(i)? * (l + 1) + num(j)?;
            Some(format!("input_blocks.{k}.1.{}", attn(rest)?))
        }
        ["down_blocks", i, "downsamplers", "0", rest] => {
            let k = 1 + num(i)? * (l + 1) + l;
            Some(format!(
                "input_blocks.{k}.0.op.{}",
                rest.strip_prefix("conv.")?
            ))
        }
        ["mid_block", "resnets", j, rest] => {
            let k = 2 * num(j)?;
            Some(format!("middle_block.{k}.{}", resnet(rest)?))
        }
        ["mid_block", "attentions", "0", rest] => Some(format!("middle_block.1.{}", attn(rest)?)),
        ["up_blocks", i, "resnets", j, rest] => {
            let k = num(i)? * (l + 1) + num(j)?;
            Some(format!("output_blocks.{k}.0.{}", resnet(rest)?))
        }
        ["up_blocks", i, "attentions", j, rest] => {
            let k = num(i)? * (l + 1) + num(j)?;
            Some(format!("output_blocks.{k}.1.{}", attn(rest)?))
        }
        ["up_blocks", i, "upsamplers", "0", rest] => {
            let i = num(i)?;
            let k = i * (l + 1) + l;
            // After the residual block and, at a level with attention, the attention.
            let level = attention.len().checked_sub(1 + i)?;
            let j = 1 + usize::from(attention[level]);
            Some(format!(
                "output_blocks.{k}.{j}.conv.{}",
                rest.strip_prefix("conv.")?
            ))
        }
        _ => None,
    }
}

/// Renames a diffusers file's tensors to the canonical names; q, k, v are stacked into `qkv`.
/// Returns the renamed tensors and the names it could not place (reported as extra).
pub fn rename<'a>(
    tensors: Vec<SourceTensor<'a>>,
    d: &Described,
) -> (Vec<SourceTensor<'a>>, Vec<String>) {
    let l = d.layers_per_block;
    let attention = &d.network.attention;
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    let mut qkv: HashMap<String, [Option<SourceTensor<'a>>; 3]> = HashMap::new();
    for t in tensors {
        let modern_name: String = t.name.split('.').map(modern).collect::<Vec<_>>().join(".");
        if let Some((prefix, which, tail)) = qkv_part(&modern_name) {
            let Some(base) = canonical(&format!("{prefix}.to_out.0.{tail}"), l, attention) else {
                unknown.push(t.name);
                continue;
            };
            let base = base.replace("proj_out", "qkv");
            qkv.entry(base).or_default()[which] = Some(t);
            continue;
        }
        match canonical(&modern_name, l, attention) {
            Some(name) => out.push(SourceTensor { name, ..t }),
            None => unknown.push(t.name),
        }
    }
    for (name, parts) in qkv {
        match parts {
            [Some(q), Some(k), Some(v)] if q.dtype == k.dtype && k.dtype == v.dtype => {
                let mut shape = q.shape.clone();
                if let Some(first) = shape.first_mut() {
                    *first = q.shape[0] + k.shape[0] + v.shape[0];
                }
                let data: Vec<u8> = [q.data, k.data, v.data].concat();
                out.push(SourceTensor {
                    name,
                    dtype: q.dtype,
                    shape,
                    data: Cow::Owned(data),
                });
            }
            parts => {
                for p in parts.into_iter().flatten() {
                    unknown.push(format!(
                        "{} (its q, k, v projections are incomplete)",
                        p.name
                    ));
                }
            }
        }
    }
    (out, unknown)
}

/// `…attentions.J.to_q.weight` → (`…attentions.J`, 0, `weight`).
fn qkv_part(name: &str) -> Option<(&str, usize, &str)> {
    for (i, p) in [".to_q.", ".to_k.", ".to_v."].iter().enumerate() {
        if let Some(pos) = name.find(p) {
            return Some((&name[..pos], i, &name[pos + p.len()..]));
        }
    }
    None
}
