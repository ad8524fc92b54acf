//! Importing the field's pretrained diffusion checkpoints as priors: guided-diffusion (ADM) and
//! consistency-model state dicts (`.pt`/`.pth`, with a YAML of `create_model`'s arguments) and
//! diffusers `UNet2DModel` folders. One reader per file format (`torch_file`, `safetensors`),
//! one reader per config (`adm_config`, `diffusers`).
//!
//! Everything is checked before anything is written: every tensor the network reads, its shape,
//! no tensor left over, the precision. The weights are converted once, into a model folder
//! (`weights.safetensors` in the file's own precision, `card.ron`, `README.md`) written under a
//! temporary name beside its destination and renamed into place, after checking the free disk.
//! Why once rather than reading the original at each start: a start then needs neither the
//! original file (which may move) nor a pickle parse, the stored file maps straight into memory,
//! and the one copy costs the checkpoint's size once (half-precision files stay half).

pub mod adm_config;
pub mod diffusers;
pub mod pickle;
pub mod safetensors;
pub mod torch_file;
pub mod zip;

use crate::error::{Error, Result};
use crate::priors::adm_layout::AdmConfig;
use crate::priors::card::{CheckpointCard, CheckpointFormat, ModelCard};
use crate::priors::parameterisation::{Parameterisation, Schedule};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }
}

/// One tensor of a file: contiguous little-endian bytes, usually borrowed from the mapped file.
#[derive(Debug, Clone)]
pub struct SourceTensor<'a> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Cow<'a, [u8]>,
}

impl SourceTensor<'_> {
    /// The values as f32 (half precision widened exactly).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let b = &self.data;
        Ok(match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::F64 => b
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a) as f32
                })
                .collect(),
            d => {
                return Err(Error::invalid(
                    format!("tensor '{}'", self.name),
                    format!("holds {d:?} values, not floating point"),
                ));
            }
        })
    }
}

/// What the user asks to import.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportRequest {
    /// A `.pt`/`.pth`/`.bin`/`.safetensors` file or a diffusers model folder.
    pub path: PathBuf,
    pub name: String,
    /// YAML (ADM, consistency models) or `config.json` (a lone diffusers weights file).
    pub config: Option<PathBuf>,
    /// The key a nested state dict sits under (`ema`, `model`, `state_dict`).
    pub key: Option<String>,
    /// The licence the user states for the weights (recorded in the card).
    pub licence: String,
}

/// A checkpoint read and checked: what will be written.
pub struct Checked {
    pub format: CheckpointFormat,
    pub network: AdmConfig,
    pub parameterisation: Parameterisation,
    /// The weights file read (its name and checksum go into the card).
    pub weights: PathBuf,
}

fn map(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::file(path, format!("cannot open the checkpoint: {e}")))?;
    // SAFETY: the map is only read while the import runs; a file changed underneath fails the
    // shape and size checks or the checksum, it cannot break memory safety of the reads below
    // beyond yielding other bytes.
    unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| Error::file(path, format!("cannot read the checkpoint: {e}")))
}

/// Works out the format, the config and the weights file of a request.
pub fn describe(req: &ImportRequest) -> Result<Checked> {
    let path = &req.path;
    if path.is_dir() {
        let dir = if path.join("config.json").is_file() {
            path.clone()
        } else if path.join("unet/config.json").is_file() {
            path.join("unet")
        } else {
            return Err(Error::file(
                path,
                "a diffusers model folder needs config.json (or unet/config.json)",
            ));
        };
        let weights = [
            "diffusion_pytorch_model.safetensors",
            "diffusion_pytorch_model.bin",
        ]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::file(
                &dir,
                "no diffusion_pytorch_model.safetensors or .bin in the folder",
            )
        })?;
        let config_path = req
            .config
            .clone()
            .unwrap_or_else(|| dir.join("config.json"));
        return diffusers_checked(&config_path, &weights, &dir);
    }
    if !path.is_file() {
        return Err(Error::file(path, "no such checkpoint file or folder"));
    }
    let config = req.config.as_ref().ok_or_else(|| {
        Error::file(
            path,
            "give --config: a YAML of guided-diffusion's create_model arguments (see \
             assets/checkpoints/) or, for diffusers weights, their config.json",
        )
    })?;
    let is_json = config.extension().is_some_and(|e| e == "json");
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    if is_json || is_safetensors {
        let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
        return diffusers_checked(config, path, &dir);
    }
    let text = crate::files::read_text(config)?;
    let d = adm_config::parse(&text).map_err(|e| Error::file(config, e))?;
    Ok(Checked {
        format: if d.consistency {
            CheckpointFormat::ConsistencyModels
        } else {
            CheckpointFormat::GuidedDiffusion
        },
        network: d.network,
        parameterisation: d.parameterisation,
        weights: path.clone(),
    })
}

fn diffusers_checked(config: &Path, weights: &Path, dir: &Path) -> Result<Checked> {
    let d = diffusers::parse_config(&crate::files::read_text(config)?)
        .map_err(|e| Error::file(config, e))?;
    let sched = [
        dir.join("scheduler/scheduler_config.json"),
        dir.join("scheduler_config.json"),
        dir.join("../scheduler/scheduler_config.json"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    let text = match &sched {
        Some(p) => Some(crate::files::read_text(p)?),
        None => None,
    };
    let parameterisation = diffusers::parse_scheduler(text.as_deref())
        .map_err(|e| Error::file(sched.as_deref().unwrap_or(config), e))?;
    Ok(Checked {
        format: CheckpointFormat::Diffusers {
            layers_per_block: d.layers_per_block,
        },
        network: d.network,
        parameterisation,
        weights: weights.to_path_buf(),
    })
}

/// Reads the weights file's tensors under their canonical names, each checked against the
/// network: the returned list is in the network's order, complete, and nothing else.
pub fn read_checked<'a>(
    checked: &Checked,
    bytes: &'a [u8],
    key: Option<&str>,
) -> Result<Vec<SourceTensor<'a>>> {
    let path = &checked.weights;
    let at = |e: String| Error::file(path, e);
    let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
        safetensors::read(bytes).map_err(at)?
    } else {
        torch_file::read(bytes, key).map_err(at)?
    };
    let (mut tensors, mut extra) = match checked.format {
        CheckpointFormat::Diffusers { layers_per_block } => diffusers::rename(
            tensors,
            &diffusers::Described {
                network: checked.network.clone(),
                layers_per_block,
            },
        ),
        _ => (tensors, vec![]),
    };
    for t in &mut tensors {
        // The attention projections: 1-D convolutions [O, I, 1] (guided-diffusion) or 2-D
        // [O, I, 1, 1] (consistency models) or linear [O, I] (diffusers) are all [O, I] here.
        if (t.name.ends_with(".qkv.weight") || t.name.ends_with(".proj_out.weight"))
            && t.shape.len() > 2
            && t.shape[2..].iter().all(|d| *d == 1)
        {
            t.shape.truncate(2);
        }
    }
    let expected = checked.network.expected();
    let mut by_name: std::collections::HashMap<String, SourceTensor<'a>> =
        tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut out = Vec::with_capacity(expected.len());
    for (name, shape) in &expected {
        let t = by_name.remove(name).ok_or_else(|| {
            at(format!(
                "tensor '{name}' (shape {shape:?}) is missing: the config does not describe this \
                 file (or the weights are nested: --key)"
            ))
        })?;
        if &t.shape != shape {
            return Err(at(format!(
                "tensor '{name}' has shape {:?} but the config gives {shape:?}: the config does \
                 not describe this checkpoint (check num_channels, channel_mult, \
                 num_res_blocks, attention_resolutions, learn_sigma, class_cond)",
                t.shape
            )));
        }
        if !matches!(t.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
            return Err(at(format!(
                "tensor '{name}' holds {:?} values, not floats",
                t.dtype
            )));
        }
        out.push(t);
    }
    extra.extend(by_name.into_keys());
    if !extra.is_empty() {
        extra.sort();
        let shown: Vec<&str> = extra.iter().take(5).map(String::as_str).collect();
        return Err(at(format!(
            "{} tensor(s) the config's network does not use, e.g. '{}': the config does not \
             describe this checkpoint",
            extra.len(),
            shown.join("', '")
        )));
    }
    Ok(out)
}

/// The SHA-256 of a file, hex.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Free bytes on the disk holding `dir` (None where it cannot be told).
#[cfg(unix)]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed out-struct of the right type.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

#[cfg(not(unix))]
pub fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Refuses an import whose weights (`bytes`, plus a margin for the header and the card) do not
/// fit in `free` bytes (None: unknown, allowed).
pub fn check_free_space(dir: &Path, bytes: u64, free: Option<u64>) -> Result<()> {
    let need = bytes + bytes / 50 + (1 << 20);
    match free {
        Some(free) if free < need => Err(Error::file(
            dir,
            format!(
                "not enough free disk: the imported weights need {:.1} MB, {:.1} MB are free",
                need as f64 / 1e6,
                free as f64 / 1e6
            ),
        )),
        _ => Ok(()),
    }
}

/// Imports a checkpoint into `models_dir/NAME`; returns the folder.
pub fn import_into(req: &ImportRequest, models_dir: &Path) -> Result<PathBuf> {
    if !crate::models::is_bare_name(&req.name) || req.name.starts_with('.') {
        return Err(Error::invalid(
            "model name",
            format!(
                "'{}' must be a plain name (no slashes, not starting with '.')",
                req.name
            ),
        ));
    }
    let dest = models_dir.join(&req.name);
    if dest.exists() {
        return Err(Error::file(
            &dest,
            "a model of this name is already installed: remove it or choose another --name",
        ));
    }
    let checked = describe(req)?;
    let mmap = map(&checked.weights)?;
    let tensors = read_checked(&checked, &mmap, req.key.as_deref())?;
    let card = card_for(req, &checked, &sha256(&mmap), &tensors);
    let card_text = card.to_ron()?;
    let bytes: u64 = tensors.iter().map(|t| t.data.len() as u64).sum();
    std::fs::create_dir_all(models_dir)
        .map_err(|e| Error::file(models_dir, format!("cannot create the models folder: {e}")))?;
    check_free_space(models_dir, bytes, free_bytes(models_dir))?;
    let tmp = models_dir.join(format!(".importing-{}-{}", req.name, std::process::id()));
    let written = write_folder(&tmp, &tensors, &card_text, &readme(&card, &checked));
    let renamed = written.and_then(|_| {
        std::fs::rename(&tmp, &dest)
            .map_err(|e| Error::file(&dest, format!("cannot move the model into place: {e}")))
    });
    if let Err(e) = renamed {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(dest)
}

fn write_folder(dir: &Path, tensors: &[SourceTensor<'_>], card: &str, readme: &str) -> Result<()> {
    use std::io::Write;
    let fail = |p: &Path, e: std::io::Error| Error::file(p, format!("cannot write: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let weights = dir.join(crate::priors::card::CHECKPOINT_WEIGHTS);
    let file = std::fs::File::create(&weights).map_err(|e| fail(&weights, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    safetensors::write(&mut w, tensors).map_err(|e| fail(&weights, e))?;
    let file = w.into_inner().map_err(|e| fail(&weights, e.into_error()))?;
    file.sync_all().map_err(|e| fail(&weights, e))?;
    for (name, text) in [
        (crate::priors::card::CARD_FILE, card),
        ("README.md", readme),
    ] {
        let p = dir.join(name);
        let mut f = std::fs::File::create(&p).map_err(|e| fail(&p, e))?;
        f.write_all(text.as_bytes()).map_err(|e| fail(&p, e))?;
        f.sync_all().map_err(|e| fail(&p, e))?;
    }
    Ok(())
}

fn card_for(
    req: &ImportRequest,
    checked: &Checked,
    sha: &str,
    tensors: &[SourceTensor<'_>],
) -> ModelCard {
    let schedule = Schedule::new(checked.parameterisation.clone());
    let (lo, hi) = schedule.range();
    let size = checked.network.image_size;
    let precision = tensors.first().map_or(DType::F32, |t| t.dtype);
    let source = checked
        .weights
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ModelCard {
        name: req.name.clone(),
        shape: [checked.network.in_channels, size, size],
        any_size: false,
        unet: None,
        sigma_min: lo,
        sigma_max: hi,
        weights: crate::priors::card::CHECKPOINT_WEIGHTS.into(),
        data: format!("imported from {source}"),
        trained_steps: 0,
        eps: None,
        generator: None,
        calibration: vec![],
        checkpoint: Some(CheckpointCard {
            format: checked.format,
            network: checked.network.clone(),
            parameterisation: checked.parameterisation.clone(),
            source,
            sha256: sha.to_string(),
            licence: req.licence.clone(),
            precision: safetensors::dtype_name(precision).to_string(),
        }),
    }
}

fn readme(card: &ModelCard, checked: &Checked) -> String {
    let c = card.checkpoint.as_ref();
    let kind = match &checked.parameterisation {
        Parameterisation::Consistency { .. } => {
            "a consistency model f(x, σ) (a one-step generator: NoiseSpaceLangevin samples \
             through it)"
        }
        Parameterisation::Ddpm { .. } => {
            "a DDPM, used as the denoiser D(x, σ) = x − σ·ε(x/√(1+σ²), t(σ))"
        }
    };
    format!(
        "# {name}\n\nImported by `posterior-lab models --import-checkpoint` from `{src}` \
         (SHA-256 `{sha}`).\n\n- What it is: {kind}.\n- Format: {fmt:?}; weights stored in \
         {prec}.\n- Pictures: {s}×{s}, colour; larger pictures are denoised in overlapping \
         tiles of this size.\n- σ range: {lo:.4}–{hi:.1}.\n- Licence (as stated at import): \
         {lic}.\n\nThe machine-readable card is `card.ron`.\n",
        name = card.name,
        src = c.map_or("", |c| c.source.as_str()),
        sha = c.map_or("", |c| c.sha256.as_str()),
        fmt = checked.format,
        prec = c.map_or("", |c| c.precision.as_str()),
        s = card.shape[1],
        lo = card.sigma_min,
        hi = card.sigma_max,
        lic = if card
            .checkpoint
            .as_ref()
            .is_some_and(|c| !c.licence.is_empty())
        {
            c.map_or("", |c| c.licence.as_str())
        } else {
            "not stated"
        },
    )
}
