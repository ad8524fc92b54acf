//! PyTorch `.pt`/`.pth` files written by `torch.save`: the zip format (PyTorch ≥ 1.6: a pickle
//! `data.pkl` plus one entry per storage) and the legacy format (consecutive pickles followed by
//! the raw storages). The tensors of a state dict come out with their nested keys joined by
//! '.', borrowing their bytes from the mapped file where they are contiguous.

use super::pickle::{self, TensorRef, Value};
use super::zip::{self, Archive};
use super::{DType, SourceTensor};
use std::borrow::Cow;
use std::collections::HashMap;

/// The magic number `torch.save` pickled first in the legacy format (as LONG1 of 10 bytes).
const LEGACY_MAGIC: [u8; 4] = [0x80, 0x02, 0x8a, 0x0a];

/// The tensors of the state dict in `bytes`; `key` selects a nested dict (`ema`, `model`).
pub fn read<'a>(bytes: &'a [u8], key: Option<&str>) -> Result<Vec<SourceTensor<'a>>, String> {
    let (root, storages) = if zip::is_zip(bytes) {
        read_zip(bytes)?
    } else if bytes.starts_with(&LEGACY_MAGIC) {
        read_legacy(bytes)?
    } else {
        return Err(
            "not a PyTorch checkpoint (neither a torch.save zip archive nor the legacy format)"
                .into(),
        );
    };
    let dict = select(root, key)?;
    let mut refs = Vec::new();
    flatten("", &dict, &mut refs);
    if refs.is_empty() {
        return Err("it holds no tensors".into());
    }
    refs.into_iter()
        .map(|(name, t)| {
            let data = storages.get(&t.storage).ok_or_else(|| {
                format!(
                    "tensor '{name}' refers to storage {} that the file lacks",
                    t.storage
                )
            })?;
            Ok(SourceTensor {
                data: view(data, &t).map_err(|e| format!("tensor '{name}': {e}"))?,
                name,
                dtype: t.dtype,
                shape: t.shape,
            })
        })
        .collect()
}

type Storages<'a> = HashMap<String, Cow<'a, [u8]>>;

fn read_zip(bytes: &[u8]) -> Result<(Value, Storages<'_>), String> {
    let archive = Archive::open(bytes)?;
    let pkl = archive
        .find("data.pkl")
        .ok_or("the zip archive has no data.pkl: not a torch.save file")?;
    let (root, _) = pickle::read(&archive.read(pkl)?)?;
    let mut storages = HashMap::new();
    for e in &archive.entries {
        if let Some(pos) = e.name.find("/data/") {
            let key = e.name[pos + 6..].to_string();
            storages.insert(key, archive.read(e)?);
        } else if let Some(key) = e.name.strip_prefix("data/") {
            storages.insert(key.to_string(), archive.read(e)?);
        }
    }
    Ok((root, storages))
}

fn read_legacy(bytes: &[u8]) -> Result<(Value, Storages<'_>), String> {
    // magic (skipped: its 10-byte integer is no tensor shape), protocol, system info.
    let mut at = LEGACY_MAGIC.len() + 10 + 1;
    for _ in 0..2 {
        let (_, used) = pickle::read(bytes.get(at..).ok_or("the file is truncated")?)?;
        at += used;
    }
    let (root, used) = pickle::read(bytes.get(at..).ok_or("the file is truncated")?)?;
    at += used;
    let (keys, used) = pickle::read(bytes.get(at..).ok_or("the file is truncated")?)?;
    at += used;
    let Value::List(keys) = keys else {
        return Err("the legacy file's storage list is malformed".into());
    };
    let mut dtypes = HashMap::new();
    let mut refs = Vec::new();
    flatten("", &root, &mut refs);
    for (_, t) in &refs {
        dtypes.insert(t.storage.clone(), t.dtype);
    }
    let mut storages = HashMap::new();
    for k in keys {
        let key = match k {
            Value::Str(s) => s,
            Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => return Err("the legacy file's storage list is malformed".into()),
        };
        let size = dtypes.get(&key).map_or(4, |d: &DType| d.size());
        let n = bytes.get(at..at + 8).ok_or("the file is truncated")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(n);
        let n = usize::try_from(u64::from_le_bytes(a)).map_err(|_| "the file is truncated")?;
        let len = n.checked_mul(size).ok_or("the file is truncated")?;
        let data = bytes
            .get(at + 8..at + 8 + len)
            .ok_or("the file is truncated")?;
        storages.insert(key, Cow::Borrowed(data));
        at += 8 + len;
    }
    Ok((root, storages))
}

/// The dict of tensors: the root, or the one nested under `key`.
fn select(root: Value, key: Option<&str>) -> Result<Value, String> {
    let Value::Dict(items) = root else {
        return Err("the file does not hold a dict of tensors (a state dict)".into());
    };
    let Some(key) = key else {
        let has_tensors = items.iter().any(|(_, v)| matches!(v, Value::Tensor(_)));
        if !has_tensors {
            let nested: Vec<String> = items
                .iter()
                .filter(|(_, v)| matches!(v, Value::Dict(_)))
                .filter_map(|(k, _)| match k {
                    Value::Str(s) => Some(format!("'{s}'")),
                    _ => None,
                })
                .collect();
            if !nested.is_empty() {
                return Err(format!(
                    "the weights are nested under {}: name one with --key (e.g. --key {})",
                    nested.join(", "),
                    nested[0].trim_matches('\'')
                ));
            }
        }
        return Ok(Value::Dict(items));
    };
    let keys: Vec<String> = items
        .iter()
        .filter_map(|(k, _)| match k {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    items
        .into_iter()
        .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
        .map(|(_, v)| v)
        .filter(|v| matches!(v, Value::Dict(_)))
        .ok_or_else(|| {
            format!(
                "it has no dict of tensors under the key '{key}' (its keys: {})",
                keys.join(", ")
            )
        })
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, TensorRef)>) {
    let Value::Dict(items) = v else { return };
    for (k, v) in items {
        let k = match k {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            _ => continue,
        };
        let name = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Tensor(t) => out.push((name, t.clone())),
            Value::Dict(_) => flatten(&name, v, out),
            _ => {}
        }
    }
}

/// The tensor's bytes, contiguous: a slice of its storage, or a gathered copy of a strided view.
fn view<'a>(storage: &Cow<'a, [u8]>, t: &TensorRef) -> Result<Cow<'a, [u8]>, String> {
    let size = t.dtype.size();
    let numel: usize = t.shape.iter().product();
    let off = usize::try_from(t.offset).map_err(|_| "offset out of range")?;
    let contiguous = {
        let mut expect = 1usize;
        let mut ok = true;
        for (d, s) in t.shape.iter().zip(&t.stride).rev() {
            if *d != 1 && *s != expect {
                ok = false;
            }
            expect *= d;
        }
        ok
    };
    let bad = || "its data lies outside its storage (truncated file?)".to_string();
    if contiguous {
        let range = off * size..(off + numel) * size;
        return match storage {
            Cow::Borrowed(b) => b.get(range).map(Cow::Borrowed).ok_or_else(bad),
            Cow::Owned(b) => b.get(range).map(|s| Cow::Owned(s.to_vec())).ok_or_else(bad),
        };
    }
    let mut out = Vec::with_capacity(numel * size);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = off
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.extend_from_slice(storage.get(at * size..(at + 1) * size).ok_or_else(bad)?);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Cow::Owned(out))
}
