//! guided-diffusion's `create_model` arguments (the form of DPS's `configs/model_config.yaml`),
//! plus the diffusion schedule and, for a consistency model, its σ constants: a YAML file read
//! into the network description and the parameterisation. Missing keys take guided-diffusion's
//! `model_and_diffusion_defaults`; an unknown key is refused by name (a typo would otherwise
//! silently change the network).

use crate::priors::adm_layout::{AdmConfig, AttentionOrder, DownPadding};
use crate::priors::parameterisation::{BetaSchedule, Parameterisation, Prediction, TimestepRule};
use serde_yaml::Value;

/// Keys that only matter for training or that this program does not need.
const IGNORED: &[&str] = &[
    "model_path",
    "use_checkpoint",
    "use_fp16",
    "dropout",
    "timestep_respacing",
    "use_kl",
    "rescale_learned_sigmas",
    "clip_denoised",
    "num_samples",
    "batch_size",
    "use_ddim",
    "sampler",
    "generator",
    "training_mode",
    "schedule_sampler",
    "weight_schedule",
];

const KNOWN: &[&str] = &[
    "image_size",
    "num_channels",
    "num_res_blocks",
    "channel_mult",
    "learn_sigma",
    "class_cond",
    "attention_resolutions",
    "num_heads",
    "num_head_channels",
    "num_heads_upsample",
    "use_scale_shift_norm",
    "resblock_updown",
    "use_new_attention_order",
    "noise_schedule",
    "diffusion_steps",
    "predict_xstart",
    "rescale_timesteps",
    "consistency",
    "sigma_min",
    "sigma_max",
    "sigma_data",
    "timesteps",
];

/// What a config file describes.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub network: AdmConfig,
    pub parameterisation: Parameterisation,
    pub consistency: bool,
}

struct Keys(serde_yaml::Mapping);

impl Keys {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    fn int(&self, key: &str, default: i64) -> Result<i64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| format!("'{key}' must be an integer, not {}", show(v))),
        }
    }

    fn float(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| format!("'{key}' must be a number, not {}", show(v))),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "True" || s == "true" => Ok(true),
            Some(Value::String(s)) if s == "False" || s == "false" => Ok(false),
            Some(v) => Err(format!("'{key}' must be True or False, not {}", show(v))),
        }
    }

    /// A comma-separated list (`"32,16,8"`), a single number (`16`) or a YAML list.
    fn list(&self, key: &str, default: &str) -> Result<Vec<f64>, String> {
        let text = match self.get(key) {
            None => default.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Sequence(s)) => s
                .iter()
                .map(|v| match v {
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!("'{key}' holds {}", show(other))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            Some(v) => {
                return Err(format!(
                    "'{key}' must be a list like \"32,16,8\", not {}",
                    show(v)
                ));
            }
        };
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .map_err(|_| format!("'{key}' holds '{s}', which is not a number"))
            })
            .collect()
    }
}

fn show(v: &Value) -> String {
    serde_yaml::to_string(v)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "this value".into())
}

/// Reads a config's text.
pub fn parse(text: &str) -> Result<Described, String> {
    let root: Value = serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Value::Mapping(map) = root else {
        return Err("it must be a mapping of create_model's arguments (key: value lines)".into());
    };
    for k in map.keys() {
        let name = k.as_str().unwrap_or("");
        if !KNOWN.contains(&name) && !IGNORED.contains(&name) {
            return Err(format!(
                "unknown key '{}' (known: {})",
                show(k),
                KNOWN.join(", ")
            ));
        }
    }
    let keys = Keys(map);
    let image_size = usize_of(&keys, "image_size", 64)?;
    let num_channels = usize_of(&keys, "num_channels", 128)?;
    let mult = keys.list("channel_mult", "")?;
    let mult: Vec<f64> = if mult.is_empty() {
        match image_size {
            512 => vec![0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0],
            256 => vec![1.0, 1.0, 2.0, 2.0, 4.0, 4.0],
            128 => vec![1.0, 1.0, 2.0, 3.0, 4.0],
            64 => vec![1.0, 2.0, 3.0, 4.0],
            s => {
                return Err(format!(
                    "image_size {s} has no default channel_mult: give channel_mult"
                ));
            }
        }
    } else {
        mult
    };
    let channels: Vec<usize> = mult
        .iter()
        .map(|m| (m * num_channels as f64) as usize)
        .collect();
    let attention_ds: Vec<usize> = keys
        .list("attention_resolutions", "16,8")?
        .into_iter()
        .map(|r| if r > 0.0 { image_size / r as usize } else { 0 })
        .collect();
    let attention = (0..channels.len())
        .map(|level| attention_ds.contains(&(1usize << level)))
        .collect();
    let heads = keys.int("num_heads", 4)?;
    let heads_up = keys.int("num_heads_upsample", -1)?;
    let head_channels = keys.int("num_head_channels", -1)?;
    let consistency = keys.bool("consistency", false)?;
    let learn_sigma = keys.bool("learn_sigma", false)?;
    let network = AdmConfig {
        image_size,
        in_channels: 3,
        out_channels: if learn_sigma { 6 } else { 3 },
        model_channels: num_channels,
        channels,
        res_blocks: usize_of(&keys, "num_res_blocks", 2)?,
        attention,
        mid_attention: true,
        head_channels: (head_channels > 0).then_some(head_channels as usize),
        heads: heads.max(0) as usize,
        heads_up: if heads_up == -1 {
            heads.max(0) as usize
        } else {
            heads_up.max(0) as usize
        },
        order: if keys.bool("use_new_attention_order", false)? {
            AttentionOrder::QkvFirst
        } else {
            AttentionOrder::Legacy
        },
        scale_shift: keys.bool("use_scale_shift_norm", true)?,
        resblock_updown: keys.bool("resblock_updown", false)?,
        down_padding: DownPadding::Symmetric,
        groups: 32,
        norm_eps: 1e-5,
        cos_first: true,
        freq_shift: 0.0,
        num_classes: keys.bool("class_cond", false)?.then_some(1000),
    };
    network.check()?;
    let parameterisation = if consistency {
        let p = Parameterisation::Consistency {
            sigma_min: keys.float("sigma_min", 0.002)?,
            sigma_max: keys.float("sigma_max", 80.0)?,
            sigma_data: keys.float("sigma_data", 0.5)?,
        };
        if let Parameterisation::Consistency {
            sigma_min,
            sigma_max,
            sigma_data,
        } = p
            && !(sigma_min > 0.0 && sigma_max > sigma_min && sigma_data > 0.0)
        {
            return Err(
                "sigma_min, sigma_max and sigma_data must satisfy 0 < min < max, data > 0".into(),
            );
        }
        p
    } else {
        let steps = usize_of(&keys, "diffusion_steps", 1000)?;
        let betas = match keys
            .get("noise_schedule")
            .and_then(Value::as_str)
            .unwrap_or("linear")
        {
            "linear" => {
                let scale = 1000.0 / steps as f64;
                BetaSchedule::Linear {
                    start: scale * 1e-4,
                    end: scale * 0.02,
                }
            }
            "cosine" => BetaSchedule::Cosine,
            other => return Err(format!("noise_schedule '{other}' is not linear or cosine")),
        };
        Parameterisation::Ddpm {
            betas,
            steps,
            prediction: if keys.bool("predict_xstart", false)? {
                Prediction::Sample
            } else {
                Prediction::Epsilon
            },
            timesteps: match keys.get("timesteps").and_then(Value::as_str) {
                Some("nearest") => TimestepRule::Nearest,
                _ => TimestepRule::Fractional,
            },
            rescale_timesteps: keys.bool("rescale_timesteps", false)?,
        }
    };
    Ok(Described {
        network,
        parameterisation,
        consistency,
    })
}

fn usize_of(keys: &Keys, key: &str, default: i64) -> Result<usize, String> {
    let v = keys.int(key, default)?;
    if v <= 0 {
        return Err(format!("'{key}' must be positive, not {v}"));
    }
    Ok(v as usize)
}
