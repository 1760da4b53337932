//! The one GGUF reader: header, metadata key/values and tensor infos (name, shape, ggml type,
//! offset), with each tensor's byte size from its type. The llama.cpp engine checks a model with
//! it before llama.cpp sees the file, and the roofline reads a model's tensors with it. It never
//! reads tensor data, checks every length and count against the file's size before allocating,
//! and turns any malformed input into one [`GgufError`] that says what is wrong, never a panic: a
//! random file, a truncated download or a header that points past the end.
//!
//! Format (GGUF versions 2 and 3, little-endian, the ones llama.cpp reads): magic `GGUF`, version
//! `u32`, tensor count `u64`, metadata count `u64`; each metadata entry is a string key, a `u32`
//! value type and the value; each tensor info is a string name, `u32` dimension count, `u64`
//! dimensions, `u32` ggml type and `u64` offset into the data section, which starts at the next
//! multiple of `general.alignment` (default 32) after the infos. Strings are a `u64` length and
//! UTF-8 bytes.

pub mod ggml_type;
mod reader;

pub use reader::parse;

use std::fs::File;
use std::path::Path;

use indexmap::IndexMap;

use ggml_type::{GgmlType, TYPE_COUNT};

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
    #[error("not a GGUF file (no GGUF magic)")]
    NotGguf,
    /// A version this reader does not know.
    #[error("GGUF version {0} is not one llama.cpp reads (versions 2 and 3 are)")]
    Version(u32),
    /// The file ends inside the header, the metadata or the tensor infos.
    #[error("truncated inside {what} (at byte {at}), or not GGUF")]
    Truncated {
        /// The part being read.
        what: String,
        /// Where it was cut.
        at: u64,
    },
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
    /// The tensor data the header describes does not fit the file.
    #[error("truncated: the tensor data ends at byte {needed} but the file has {len} bytes (the data of tensor {tensor} is cut off)")]
    ShortData {
        /// Where the last tensor ends.
        needed: u64,
        /// The file's size.
        len: u64,
        /// The first tensor whose data passes the end.
        tensor: String,
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

/// A GGUF file in a few numbers (what the model check reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufSummary {
    /// Format version.
    pub version: u32,
    /// Tensors described.
    pub tensors: u64,
    /// Metadata entries.
    pub metadata: u64,
    /// Where the tensor data ends (at most the file's size).
    pub data_end: u64,
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
        parse(file, len)
    }

    /// The file in a few numbers.
    pub fn summary(&self) -> GgufSummary {
        GgufSummary {
            version: self.version,
            tensors: self.tensors.len() as u64,
            metadata: self.metadata.len() as u64,
            data_end: self.data_end(),
        }
    }

    /// Where the tensor data ends: the data section's start when there is no tensor.
    pub fn data_end(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| {
                self.data_offset
                    .saturating_add(t.offset)
                    .saturating_add(t.n_bytes)
            })
            .max()
            .unwrap_or(self.data_offset)
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
