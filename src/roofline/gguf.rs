//! A small GGUF reader: header, metadata key/values and tensor infos (name, shape, ggml type,
//! offset), with each tensor's byte size from its type. It never reads tensor data, checks every
//! length against the file's size before allocating, and turns any malformed input into a
//! [`GgufError`], never a panic.
//!
//! Format (GGUF versions 2 and 3, little-endian): magic `GGUF`, version `u32`, tensor count
//! `u64`, metadata count `u64`; each metadata entry is a string key, a `u32` value type and the
//! value; each tensor info is a string name, `u32` dimension count, `u64` dimensions, `u32` ggml
//! type and `u64` offset into the data section, which starts at the next multiple of
//! `general.alignment` (default 32) after the infos. Strings are a `u64` length and UTF-8 bytes.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use indexmap::IndexMap;

use super::ggml_type::{GgmlType, TYPE_COUNT};

/// Why a file could not be read as GGUF.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file (no GGUF magic at the start)")]
    NotGguf,
    /// A version this reader does not know.
    #[error("GGUF version {0} is not supported (versions 2 and 3 are)")]
    Version(u32),
    /// The file ends inside the header, the metadata or the tensor infos.
    #[error("the file ends inside {0}: it is truncated or not GGUF")]
    Truncated(String),
    /// A value that no valid file holds.
    #[error("malformed GGUF: {0}")]
    Malformed(String),
    /// A tensor of a ggml type this build does not know.
    #[error("tensor {tensor} has ggml type {id}, which llama.cpp b11434 does not know (0–{}): its size cannot be computed", TYPE_COUNT - 1)]
    UnknownType {
        /// The tensor's name.
        tensor: String,
        /// The type id in the file.
        id: u32,
    },
}

/// A metadata value. Arrays keep their element type and length; their values are kept for
/// integer arrays of at most [`MAX_KEPT_ARRAY`] elements (per-layer hyperparameters), skipped
/// otherwise (token lists).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Any unsigned integer type.
    UInt(u64),
    /// Any signed integer type.
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// An array: value type, length, and the values when kept.
    Array {
        /// GGUF value type of the elements.
        elem_type: u32,
        /// Number of elements.
        len: u64,
        /// The elements, for integer arrays of at most [`MAX_KEPT_ARRAY`] elements.
        ints: Option<Vec<i64>>,
    },
}

/// Integer arrays up to this length keep their values.
pub const MAX_KEPT_ARRAY: u64 = 65_536;

/// One tensor's description.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, innermost first (ggml's `ne`).
    pub dims: Vec<u64>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Offset in the data section.
    pub offset: u64,
    /// Bytes the tensor takes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Bytes of one row (the innermost dimension), e.g. one token's embedding.
    pub fn row_bytes(&self) -> u64 {
        self.dims
            .first()
            .and_then(|&n| self.ggml_type.row_bytes(n))
            .unwrap_or(self.n_bytes)
    }
}

/// What a GGUF file says of its model.
#[derive(Debug, Clone)]
pub struct GgufFile {
    /// Format version.
    pub version: u32,
    /// Metadata, in file order.
    pub metadata: IndexMap<String, MetaValue>,
    /// Tensor infos, in file order.
    pub tensors: Vec<TensorInfo>,
    /// Where the data section starts.
    pub data_offset: u64,
    /// The file's size.
    pub file_size: u64,
}

impl GgufFile {
    /// Reads the header, metadata and tensor infos of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        parse(BufReader::new(file), len)
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative integer value.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        match *self.get(key)? {
            MetaValue::UInt(v) => Some(v),
            MetaValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A per-layer value: an integer array of `n` elements, or one integer for every layer.
    pub fn get_per_layer(&self, key: &str, n: usize) -> Option<Vec<u64>> {
        match self.get(key)? {
            MetaValue::Array { ints: Some(v), .. } if v.len() == n => {
                v.iter().map(|&x| u64::try_from(x).ok()).collect()
            }
            MetaValue::Array { .. } => None,
            _ => self.get_u64(key).map(|v| vec![v; n]),
        }
    }

    /// The architecture (`llama`, `qwen3`, …).
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Reads a byte stream of `len` bytes with bounds checks.
struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        if self.remaining() < N as u64 {
            return Err(GgufError::Truncated(what.into()));
        }
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| GgufError::Truncated(what.into()))?;
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
            return Err(GgufError::Truncated(what.into()));
        }
        let delta = i64::try_from(n).map_err(|_| GgufError::Truncated(what.into()))?;
        self.inner
            .seek(SeekFrom::Current(delta))
            .map_err(|_| GgufError::Truncated(what.into()))?;
        self.pos += n;
        Ok(())
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let n = self.u64(what)?;
        if n > self.remaining() {
            return Err(GgufError::Truncated(what.into()));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| GgufError::Truncated(what.into()))?;
        self.pos += n;
        String::from_utf8(buf).map_err(|_| GgufError::Malformed(format!("{what} is not UTF-8")))
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
                    .ok_or_else(|| GgufError::Truncated(what.into()))?;
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
                    return Err(GgufError::Truncated(what.into()));
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
    let mut r = Reader { inner, pos: 0, len };
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
        return Err(GgufError::Truncated(format!(
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
    let data_offset = r.pos.div_ceil(alignment) * alignment;
    for t in &tensors {
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.n_bytes));
        if end.is_none_or(|e| e > len) {
            return Err(GgufError::Truncated(format!(
                "the data of tensor {} (the file is {len} bytes)",
                t.name
            )));
        }
    }
    Ok(GgufFile {
        version,
        metadata,
        tensors,
        data_offset,
        file_size: len,
    })
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
