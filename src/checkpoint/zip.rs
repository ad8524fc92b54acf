//! The entries of a zip archive (PyTorch's checkpoint format since 1.6): read from the central
//! directory, zip64 included, stored entries as slices of the mapped file, deflated ones
//! inflated. Nothing is extracted to disk.

use std::borrow::Cow;
use std::io::Read;

/// One entry: where its data lies and how it is stored.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    method: u16,
    compressed: u64,
    size: u64,
    local_header: u64,
}

pub struct Archive<'a> {
    bytes: &'a [u8],
    pub entries: Vec<Entry>,
}

pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(truncated)
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    let s = b.get(at..at + 8).ok_or_else(truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

fn truncated() -> String {
    "the file is truncated or not a complete zip archive".into()
}

fn to_usize(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| truncated())
}

impl<'a> Archive<'a> {
    pub fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let eocd = find_eocd(bytes)?;
        let mut count = u64::from(u16_at(bytes, eocd + 10)?);
        let mut cd_offset = u64::from(u32_at(bytes, eocd + 16)?);
        // A zip64 archive: the real values sit in the zip64 end record.
        if eocd >= 20 && u32_at(bytes, eocd - 20)? == 0x0706_4b50 {
            let z = to_usize(u64_at(bytes, eocd - 20 + 8)?)?;
            if u32_at(bytes, z)? != 0x0606_4b50 {
                return Err(truncated());
            }
            count = u64_at(bytes, z + 32)?;
            cd_offset = u64_at(bytes, z + 48)?;
        }
        let mut at = to_usize(cd_offset)?;
        let mut entries = Vec::new();
        for _ in 0..count {
            if u32_at(bytes, at)? != 0x0201_4b50 {
                return Err(truncated());
            }
            let method = u16_at(bytes, at + 10)?;
            let mut compressed = u64::from(u32_at(bytes, at + 20)?);
            let mut size = u64::from(u32_at(bytes, at + 24)?);
            let name_len = usize::from(u16_at(bytes, at + 28)?);
            let extra_len = usize::from(u16_at(bytes, at + 30)?);
            let comment_len = usize::from(u16_at(bytes, at + 32)?);
            let mut local_header = u64::from(u32_at(bytes, at + 42)?);
            let name = bytes
                .get(at + 46..at + 46 + name_len)
                .ok_or_else(truncated)?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra = bytes
                .get(at + 46 + name_len..at + 46 + name_len + extra_len)
                .ok_or_else(truncated)?;
            zip64_fields(extra, &mut size, &mut compressed, &mut local_header)?;
            entries.push(Entry {
                name,
                method,
                compressed,
                size,
                local_header,
            });
            at += 46 + name_len + extra_len + comment_len;
        }
        Ok(Self { bytes, entries })
    }

    /// The entry whose name ends with `suffix` (PyTorch puts every entry under one folder
    /// named after the file it first wrote).
    pub fn find(&self, suffix: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name == suffix || e.name.ends_with(&format!("/{suffix}")))
    }

    pub fn read(&self, entry: &Entry) -> Result<Cow<'a, [u8]>, String> {
        let at = to_usize(entry.local_header)?;
        if u32_at(self.bytes, at)? != 0x0403_4b50 {
            return Err(truncated());
        }
        let name_len = usize::from(u16_at(self.bytes, at + 26)?);
        let extra_len = usize::from(u16_at(self.bytes, at + 28)?);
        let start = at + 30 + name_len + extra_len;
        let data = self
            .bytes
            .get(start..start + to_usize(entry.compressed)?)
            .ok_or_else(truncated)?;
        match entry.method {
            0 => Ok(Cow::Borrowed(data)),
            8 => {
                let mut out = Vec::with_capacity(to_usize(entry.size)?);
                flate2::read::DeflateDecoder::new(data)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("entry {} cannot be inflated: {e}", entry.name))?;
                Ok(Cow::Owned(out))
            }
            m => Err(format!(
                "entry {} uses zip compression method {m}, which is not supported",
                entry.name
            )),
        }
    }
}

fn find_eocd(bytes: &[u8]) -> Result<usize, String> {
    let lowest = bytes.len().saturating_sub(22 + 65_535);
    (lowest..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(truncated)
}

/// Replaces the 32-bit fields saturated at 0xFFFFFFFF by their zip64 values.
fn zip64_fields(
    extra: &[u8],
    size: &mut u64,
    compressed: &mut u64,
    offset: &mut u64,
) -> Result<(), String> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at)?;
        let len = usize::from(u16_at(extra, at + 2)?);
        if id == 1 {
            let mut p = at + 4;
            for field in [size, compressed, offset] {
                if *field == 0xFFFF_FFFF {
                    *field = u64_at(extra, p)?;
                    p += 8;
                }
            }
            return Ok(());
        }
        at += 4 + len;
    }
    Ok(())
}
