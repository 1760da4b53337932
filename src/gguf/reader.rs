//! Reading GGUF bytes: every read bounds-checked against the file's length (a count or length
//! is checked before anything is allocated for it), skips within the read buffer, and the
//! header, metadata and tensor infos parsed into a [`GgufFile`].

use std::io::{BufReader, Read, Seek};

use indexmap::IndexMap;

use super::ggml_type::GgmlType;
use super::{GgufError, GgufFile, MetaValue, TensorInfo, MAX_KEPT_ARRAY};

/// Reads a byte stream of `len` bytes with bounds checks.
struct Reader<R> {
    inner: BufReader<R>,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn cut(&self, what: &str) -> GgufError {
        GgufError::Truncated {
            what: what.into(),
            at: self.pos,
        }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        if self.remaining() < N as u64 {
            return Err(self.cut(what));
        }
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| self.cut(what))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.bytes::<4>(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.bytes::<8>(what).map(u64::from_le_bytes)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(self.cut(what));
        }
        let delta = i64::try_from(n).map_err(|_| self.cut(what))?;
        // Within the buffer this moves in it; past it, one seek.
        self.inner
            .seek_relative(delta)
            .map_err(|_| self.cut(what))?;
        self.pos += n;
        Ok(())
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let n = self.u64(what)?;
        if n > self.remaining() {
            return Err(self.cut(what));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| self.cut(what))?;
        self.pos += n;
        // As llama.cpp, which does not require UTF-8 either.
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// One scalar of GGUF value type `t` (not an array).
    fn scalar(&mut self, t: u32, what: &str) -> Result<MetaValue, GgufError> {
        Ok(match t {
            0 => MetaValue::UInt(u64::from(self.bytes::<1>(what)?[0])),
            1 => MetaValue::Int(i64::from(self.bytes::<1>(what)?[0] as i8)),
            2 => MetaValue::UInt(u64::from(u16::from_le_bytes(self.bytes(what)?))),
            3 => MetaValue::Int(i64::from(i16::from_le_bytes(self.bytes(what)?))),
            4 => MetaValue::UInt(u64::from(self.u32(what)?)),
            5 => MetaValue::Int(i64::from(i32::from_le_bytes(self.bytes(what)?))),
            6 => MetaValue::Float(f64::from(f32::from_le_bytes(self.bytes(what)?))),
            7 => MetaValue::Bool(self.bytes::<1>(what)?[0] != 0),
            8 => MetaValue::Str(self.string(what)?),
            10 => MetaValue::UInt(self.u64(what)?),
            11 => MetaValue::Int(i64::from_le_bytes(self.bytes(what)?)),
            12 => MetaValue::Float(f64::from_le_bytes(self.bytes(what)?)),
            other => {
                return Err(GgufError::Malformed(format!(
                    "{what} has value type {other}, which GGUF does not define"
                )))
            }
        })
    }

    fn value(&mut self, what: &str) -> Result<MetaValue, GgufError> {
        let t = self.u32(what)?;
        if t != 9 {
            return self.scalar(t, what);
        }
        let elem_type = self.u32(what)?;
        let len = self.u64(what)?;
        let fixed = match elem_type {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match fixed {
            // Fixed-size elements: checked against the file in one step, then kept or skipped.
            Some(size) => {
                let bytes = len
                    .checked_mul(size)
                    .filter(|&b| b <= self.remaining())
                    .ok_or_else(|| self.cut(what))?;
                let integer = !matches!(elem_type, 6 | 7 | 12);
                if integer && len <= MAX_KEPT_ARRAY {
                    let ints = (0..len)
                        .map(|_| match self.scalar(elem_type, what)? {
                            MetaValue::UInt(v) => i64::try_from(v)
                                .map_err(|_| GgufError::Malformed(format!("{what} overflows"))),
                            MetaValue::Int(v) => Ok(v),
                            _ => Err(GgufError::Malformed(format!("{what} is not an integer"))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(MetaValue::Array {
                        elem_type,
                        len,
                        ints: Some(ints),
                    });
                }
                self.skip(bytes, what)?;
            }
            // Strings: each carries its own length; every element holds at least 8 bytes.
            None if elem_type == 8 => {
                if len > self.remaining() / 8 {
                    return Err(self.cut(what));
                }
                for _ in 0..len {
                    let n = self.u64(what)?;
                    self.skip(n, what)?;
                }
            }
            None => {
                return Err(GgufError::Malformed(format!(
                    "{what} is an array of value type {elem_type}, which this reader does not take"
                )))
            }
        }
        Ok(MetaValue::Array {
            elem_type,
            len,
            ints: None,
        })
    }
}

/// Parses a GGUF stream of `len` bytes (the header, metadata and tensor infos; no tensor data).
pub fn parse<R: Read + Seek>(inner: R, len: u64) -> Result<GgufFile, GgufError> {
    let mut r = Reader {
        inner: BufReader::with_capacity(64 << 10, inner),
        pos: 0,
        len,
    };
    let magic = r.bytes::<4>("the magic").map_err(|_| GgufError::NotGguf)?;
    if &magic != b"GGUF" {
        return Err(GgufError::NotGguf);
    }
    let version = r.u32("the header")?;
    if version.swap_bytes() <= 3 && version > 3 {
        return Err(GgufError::Malformed(
            "a big-endian GGUF file: convert it to little-endian".into(),
        ));
    }
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let n_tensors = r.u64("the header")?;
    let n_kv = r.u64("the header")?;
    // Every metadata entry takes at least 12 bytes and every tensor info at least 24.
    if n_kv > r.remaining() / 12 || n_tensors > r.remaining() / 24 {
        return Err(r.cut(&format!(
            "the metadata ({n_kv} entries and {n_tensors} tensors announced)"
        )));
    }
    let mut metadata = IndexMap::new();
    for i in 0..n_kv {
        let key = r.string(&format!("metadata key {i}"))?;
        let value = r.value(&format!("metadata value {key}"))?;
        metadata.insert(key, value);
    }
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        tensors.push(tensor_info(&mut r, i)?);
    }
    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(MetaValue::UInt(a)) if *a > 0 && a.is_power_of_two() => *a,
        Some(other) => {
            return Err(GgufError::Malformed(format!(
                "general.alignment is {other:?}, not a power of two"
            )))
        }
    };
    let data_offset = r.pos.div_ceil(alignment).saturating_mul(alignment);
    let file = GgufFile {
        version,
        metadata,
        tensors,
        data_offset,
        file_size: len,
    };
    let end = |t: &TensorInfo| {
        data_offset
            .saturating_add(t.offset)
            .saturating_add(t.n_bytes)
    };
    if let Some(cut) = file.tensors.iter().find(|t| end(t) > len) {
        return Err(GgufError::ShortData {
            needed: file.data_end(),
            len,
            tensor: cut.name.clone(),
        });
    }
    Ok(file)
}

fn tensor_info<R: Read + Seek>(r: &mut Reader<R>, i: u64) -> Result<TensorInfo, GgufError> {
    let what = format!("tensor info {i}");
    let name = r.string(&what)?;
    let n_dims = r.u32(&what)?;
    if n_dims == 0 || n_dims > 4 {
        return Err(GgufError::Malformed(format!(
            "tensor {name} has {n_dims} dimensions (ggml takes 1 to 4)"
        )));
    }
    let dims = (0..n_dims)
        .map(|_| r.u64(&what))
        .collect::<Result<Vec<_>, _>>()?;
    let id = r.u32(&what)?;
    let offset = r.u64(&what)?;
    let ggml_type = GgmlType::from_id(id).ok_or_else(|| GgufError::UnknownType {
        tensor: name.clone(),
        id,
    })?;
    let elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| GgufError::Malformed(format!("tensor {name}'s size overflows")))?;
    if !dims[0].is_multiple_of(ggml_type.block_size) {
        return Err(GgufError::Malformed(format!(
            "tensor {name}: a row of {} elements is not a whole number of {} blocks of {}",
            dims[0], ggml_type.name, ggml_type.block_size
        )));
    }
    let n_bytes = ggml_type
        .row_bytes(elements)
        .ok_or_else(|| GgufError::Malformed(format!("tensor {name}'s size overflows")))?;
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
        n_bytes,
    })
}
