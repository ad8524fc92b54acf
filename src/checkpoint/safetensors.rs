//! The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets}}`, then the raw little-endian data. Read from a mapped
//! file (diffusers' weights, an imported model's stored weights) and written by the importer.

use super::{DType, SourceTensor};
use std::borrow::Cow;
use std::io::Write;

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::F64 => "F64",
        DType::I64 => "I64",
        DType::I32 => "I32",
        DType::I16 => "I16",
        DType::I8 => "I8",
        DType::U8 => "U8",
        DType::Bool => "BOOL",
    }
}

fn parse_dtype(s: &str) -> Option<DType> {
    Some(match s {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "I8" => DType::I8,
        "U8" => DType::U8,
        "BOOL" => DType::Bool,
        _ => return None,
    })
}

/// The tensors of a safetensors file, borrowing their data from `bytes`.
pub fn read(bytes: &[u8]) -> Result<Vec<SourceTensor<'_>>, String> {
    let truncated = || "the file is truncated or not a safetensors file".to_string();
    let len = bytes.get(..8).ok_or_else(truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(len);
    let n = usize::try_from(u64::from_le_bytes(a)).map_err(|_| truncated())?;
    let header = bytes
        .get(8..8usize.saturating_add(n))
        .ok_or_else(truncated)?;
    let data = &bytes[8 + n..];
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format!("its header is not valid JSON: {e}"))?;
    let mut out = Vec::new();
    for (name, v) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad = || format!("its header entry '{name}' is malformed");
        let dtype = v
            .get("dtype")
            .and_then(|d| d.as_str())
            .and_then(parse_dtype)
            .ok_or_else(bad)?;
        let shape: Vec<usize> = v
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(bad)?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(bad))
            .collect::<Result<_, _>>()?;
        let offsets = v
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .filter(|a| a.len() == 2)
            .ok_or_else(bad)?;
        let (b, e) = match (offsets[0].as_u64(), offsets[1].as_u64()) {
            (Some(b), Some(e)) if b <= e => (b as usize, e as usize),
            _ => return Err(bad()),
        };
        let numel: usize = shape.iter().product();
        if e - b != numel * dtype.size() {
            return Err(format!(
                "tensor '{name}' holds {} bytes for shape {shape:?} of {}",
                e - b,
                dtype_name(dtype)
            ));
        }
        let slice = data.get(b..e).ok_or_else(truncated)?;
        out.push(SourceTensor {
            name,
            dtype,
            shape,
            data: Cow::Borrowed(slice),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Writes tensors (in the given order) to `w`; returns the bytes written.
pub fn write(w: &mut impl Write, tensors: &[SourceTensor<'_>]) -> std::io::Result<u64> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + t.data.len();
        header.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": dtype_name(t.dtype),
                "shape": t.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut text =
        serde_json::to_vec(&serde_json::Value::Object(header)).map_err(std::io::Error::other)?;
    // The data starts 8-byte aligned, as the format recommends.
    while (text.len() + 8) % 8 != 0 {
        text.push(b' ');
    }
    w.write_all(&(text.len() as u64).to_le_bytes())?;
    w.write_all(&text)?;
    for t in tensors {
        w.write_all(&t.data)?;
    }
    Ok(8 + text.len() as u64 + offset as u64)
}
