//! Minimal, strict NumPy `.npy` reading and writing (C order, little-endian).
//!
//! Reading accepts float32/float64, signed and unsigned integers and booleans, converted to f32
//! (f64 values outside f32's range become an error rather than silent infinities).
//! Writing produces float32, the format the command-line contract promises.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// An array read from a `.npy` file: values in C order and the shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl NpyArray {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a `.npy` file; every problem is reported against the file's path.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = crate::files::read(path, crate::files::MAX_DATA_BYTES)?;
    parse(&bytes).map_err(|msg| Error::file(path, format!("not a valid .npy array: {msg}")))
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("missing the NUMPY magic header".into());
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported format version {v}")),
    };
    let end = header_len.saturating_add(start);
    if bytes.len() < end {
        return Err("truncated header".into());
    }
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let shape_text = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let shape = parse_shape(&shape_text)?;
    let count = crate::files::element_count("shape", &shape)?;

    let payload = &bytes[end..];
    let (size, convert): (usize, fn(&[u8]) -> f64) = match descr.as_str() {
        "<f4" | "=f4" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<f8" | "=f8" => (8, |b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        "<i4" | "=i4" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<i8" | "=i8" => (8, |b| {
            i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64
        }),
        "|u1" | "<u1" => (1, |b| b[0] as f64),
        "|i1" | "<i1" => (1, |b| b[0] as i8 as f64),
        "|b1" => (1, |b| if b[0] != 0 { 1.0 } else { 0.0 }),
        other => {
            return Err(format!(
                "unsupported dtype '{other}' (use float32, float64, int, uint8 or bool, little-endian)"
            ));
        }
    };
    let is_fortran = fortran.trim().starts_with("True");
    // count ≤ MAX_ELEMENTS, so count·size cannot overflow.
    let needed = count * size;
    if payload.len() < needed {
        return Err(format!(
            "data is truncated: shape {shape:?} needs {needed} bytes, the file has {}",
            payload.len()
        ));
    }
    let mut data = Vec::with_capacity(count);
    for i in 0..count {
        let v = convert(&payload[i * size..(i + 1) * size]);
        if v.is_finite() && v.abs() > f32::MAX as f64 {
            return Err(format!(
                "value {v} at flat index {i} does not fit in float32"
            ));
        }
        data.push(v as f32);
    }
    if is_fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape);
    }
    Ok(NpyArray { shape, data })
}

fn fortran_to_c(data: &[f32], shape: &[usize]) -> Vec<f32> {
    let n = shape.len();
    let mut out = vec![0.0; data.len()];
    let mut idx = vec![0usize; n];
    for (c_flat, slot) in out.iter_mut().enumerate() {
        let mut rem = c_flat;
        for k in (0..n).rev() {
            idx[k] = rem % shape[k];
            rem /= shape[k];
        }
        let mut f_flat = 0;
        let mut stride = 1;
        for k in 0..n {
            f_flat += idx[k] * stride;
            stride *= shape[k];
        }
        *slot = data[f_flat];
    }
    out
}

fn dict_value(header: &str, key: &str) -> Option<String> {
    let pat_single = format!("'{key}'");
    let pat_double = format!("\"{key}\"");
    let pos = header
        .find(&pat_single)
        .or_else(|| header.find(&pat_double))?;
    let rest = &header[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        let close = rest.find(')')?;
        return Some(rest[..=close].to_string());
    }
    let end = rest.find(',').unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

fn parse_shape(text: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = text.trim().trim_start_matches('(').trim_end_matches(')');
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape entry '{s}'"))
        })
        .collect()
}

/// Encodes a float32 array as `.npy` bytes.
pub fn encode(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let shape_text = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that the data starts on a 64-byte boundary, as NumPy does.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = Vec::with_capacity(unpadded + pad + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes a float32 array to `path`.
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let bytes = encode(shape, data);
    let mut file = std::fs::File::create(path)
        .map_err(|e| Error::file(path, format!("cannot create: {e}")))?;
    file.write_all(&bytes)
        .map_err(|e| Error::file(path, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = encode(&[2, 3, 4], &data);
        assert_eq!(bytes.len() % 64, (24 * 4) % 64);
        let back = parse(&bytes).unwrap();
        assert_eq!(back.shape, vec![2, 3, 4]);
        assert_eq!(back.data, data);
    }

    #[test]
    fn one_dimensional_and_scalar_shapes() {
        let back = parse(&encode(&[5], &[1.0; 5])).unwrap();
        assert_eq!(back.shape, vec![5]);
        let back = parse(&encode(&[], &[2.0])).unwrap();
        assert_eq!(back.shape, Vec::<usize>::new());
        assert_eq!(back.data, vec![2.0]);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(parse(b"hello world").is_err());
        let mut bytes = encode(&[4], &[1.0; 4]);
        bytes.truncate(bytes.len() - 3);
        assert!(parse(&bytes).unwrap_err().contains("truncated"));
    }

    #[test]
    fn fortran_order_is_transposed() {
        // A 2x3 array stored column-major: [[0,1,2],[3,4,5]] -> memory 0,3,1,4,2,5.
        let mut bytes = encode(&[2, 3], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let pos = bytes.windows(5).position(|w| w == b"False").unwrap();
        bytes[pos..pos + 5].copy_from_slice(b"True ");
        let back = parse(&bytes).unwrap();
        assert_eq!(back.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}
