//! A GGUF model file checked before llama.cpp sees it: the magic and version, every metadata
//! entry and tensor description read (skipped, never kept), and the file long enough to hold the
//! tensor data they describe. A random file, a truncated download or a header that points past
//! the end gets one clear error instead of a crash or a long, doomed load. Nothing here
//! allocates more than a key's length, and every count is checked against the file's size.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::EngineError;

/// What is wrong with a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufError {
    /// The first bytes are not `GGUF`.
    #[error("not a GGUF file (no GGUF magic)")]
    Magic,
    /// A version this check does not know.
    #[error("GGUF version {0} is not one llama.cpp reads (1 to 3)")]
    Version(u32),
    /// The header ends early.
    #[error("truncated inside the header (at byte {0})")]
    Truncated(u64),
    /// The header is self-contradictory.
    #[error("corrupt header: {0}")]
    Corrupt(String),
    /// The tensor data the header describes does not fit the file.
    #[error("truncated: the tensor data ends at byte {needed} but the file has {len} bytes")]
    ShortData {
        /// Where the last tensor ends.
        needed: u64,
        /// The file's size.
        len: u64,
    },
}

/// What the check learned.
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

/// Bytes per block and values per block of the ggml types whose size is certain; other types are
/// only checked to start inside the file.
fn type_size(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (4, 1),     // F32
        1 => (2, 1),     // F16
        2 => (18, 32),   // Q4_0
        3 => (20, 32),   // Q4_1
        6 => (22, 32),   // Q5_0
        7 => (24, 32),   // Q5_1
        8 => (34, 32),   // Q8_0
        10 => (84, 256), // Q2_K
        11 => (110, 256),
        12 => (144, 256),
        13 => (176, 256),
        14 => (210, 256), // Q6_K
        24 => (1, 1),     // I8
        25 => (2, 1),
        26 => (4, 1),
        27 => (8, 1),
        28 => (8, 1), // F64
        30 => (2, 1), // BF16
        _ => return None,
    })
}

struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.inner
            .read_exact(&mut b)
            .map_err(|_| GgufError::Truncated(self.pos))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }
    /// A count or length: u32 in version 1, u64 after.
    fn count(&mut self, version: u32) -> Result<u64, GgufError> {
        if version == 1 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }
    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.len)
            .ok_or(GgufError::Truncated(self.pos))?;
        let delta = i64::try_from(n).map_err(|_| GgufError::Truncated(self.pos))?;
        self.inner
            .seek(SeekFrom::Current(delta))
            .map_err(|_| GgufError::Truncated(self.pos))?;
        self.pos = end;
        Ok(())
    }
    /// A string: skipped, or read when it is short (keys).
    fn string(&mut self, version: u32, keep: bool) -> Result<Option<String>, GgufError> {
        let n = self.count(version)?;
        if keep && n <= 256 {
            let mut b = vec![0u8; n as usize];
            self.inner
                .read_exact(&mut b)
                .map_err(|_| GgufError::Truncated(self.pos))?;
            self.pos += n;
            return Ok(Some(String::from_utf8_lossy(&b).into_owned()));
        }
        self.skip(n)?;
        Ok(None)
    }
    /// Skips one metadata value of type `t`; returns it when it is a u32 (for the alignment).
    fn value(&mut self, version: u32, t: u32, depth: u32) -> Result<Option<u32>, GgufError> {
        let fixed = match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4 => return self.u32().map(Some),
            5 | 6 => 4,
            10..=12 => 8,
            8 => return self.string(version, false).map(|_| None),
            9 => {
                if depth > 2 {
                    return Err(GgufError::Corrupt("arrays nested too deep".into()));
                }
                let et = self.u32()?;
                let n = self.count(version)?;
                match et {
                    0 | 1 | 7 => self.skip(n)?,
                    2 | 3 => self.skip(n.checked_mul(2).ok_or(GgufError::Truncated(self.pos))?)?,
                    4..=6 => self.skip(n.checked_mul(4).ok_or(GgufError::Truncated(self.pos))?)?,
                    10..=12 => {
                        self.skip(n.checked_mul(8).ok_or(GgufError::Truncated(self.pos))?)?
                    }
                    8 | 9 => {
                        // Each element takes at least 8 bytes: a count larger than that is a lie.
                        if n > self.len.saturating_sub(self.pos) / 8 + 1 {
                            return Err(GgufError::Truncated(self.pos));
                        }
                        for _ in 0..n {
                            self.value(version, et, depth + 1)?;
                        }
                    }
                    other => {
                        return Err(GgufError::Corrupt(format!(
                            "unknown metadata array type {other}"
                        )))
                    }
                }
                return Ok(None);
            }
            other => {
                return Err(GgufError::Corrupt(format!(
                    "unknown metadata value type {other}"
                )))
            }
        };
        self.skip(fixed)?;
        Ok(None)
    }
}

/// Checks the GGUF bytes of `r`, `len` bytes long.
pub fn check_reader<R: Read + Seek>(r: R, len: u64) -> Result<GgufSummary, GgufError> {
    let mut r = Reader {
        inner: r,
        pos: 0,
        len,
    };
    if r.bytes::<4>().map_err(|_| GgufError::Magic)? != *b"GGUF" {
        return Err(GgufError::Magic);
    }
    let version = r.u32()?;
    if !(1..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let tensors = r.count(version)?;
    let metadata = r.count(version)?;
    // A tensor description takes at least 24 bytes and a metadata entry at least 13.
    if tensors > len / 24 || metadata > len / 13 {
        return Err(GgufError::Corrupt(format!(
            "{tensors} tensors and {metadata} metadata entries cannot fit in {len} bytes"
        )));
    }
    let mut alignment = 32u64;
    for _ in 0..metadata {
        let key = r.string(version, true)?;
        let t = r.u32()?;
        let v = r.value(version, t, 0)?;
        if key.as_deref() == Some("general.alignment") {
            alignment = v
                .map(u64::from)
                .filter(|a| a.is_power_of_two())
                .ok_or_else(|| {
                    GgufError::Corrupt("general.alignment is not a power of two".into())
                })?;
        }
    }
    let mut data_size = 0u64;
    for _ in 0..tensors {
        r.string(version, false)?;
        let dims = r.u32()?;
        if dims > 8 {
            return Err(GgufError::Corrupt(format!(
                "a tensor with {dims} dimensions"
            )));
        }
        let mut elements = 1u64;
        for _ in 0..dims {
            elements = elements.saturating_mul(r.count(version)?);
        }
        let t = r.u32()?;
        let offset = r.u64()?;
        let size = type_size(t).map_or(0, |(bytes, block)| {
            elements.div_ceil(block).saturating_mul(bytes)
        });
        data_size = data_size.max(offset.saturating_add(size));
    }
    let data_start = r.pos.div_ceil(alignment).saturating_mul(alignment);
    let needed = data_start.saturating_add(data_size);
    if needed > len {
        return Err(GgufError::ShortData { needed, len });
    }
    Ok(GgufSummary {
        version,
        tensors,
        metadata,
        data_end: needed,
    })
}

/// Checks the model file at `path`: it exists, is a file, and is a whole GGUF model. The error
/// names the file and the fix.
pub fn check(path: &Path) -> Result<GgufSummary, EngineError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        EngineError::Load(format!(
            "model file {} not found ({e}): pass an existing .gguf with --model (scripts/fetch-model.sh gets the default one)",
            path.display()
        ))
    })?;
    if meta.is_dir() {
        return Err(EngineError::Load(format!(
            "{} is a directory: --model takes a .gguf file for the llamacpp engine (a Hugging Face folder is for --engine vllm)",
            path.display()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| {
        EngineError::Load(format!(
            "cannot read {} ({e}): check its permissions",
            path.display()
        ))
    })?;
    check_reader(BufReader::new(file), meta.len()).map_err(|e| {
        let fix = match e {
            GgufError::Magic | GgufError::Version(_) => "pass a .gguf model with --model",
            _ => "the download is incomplete or damaged: fetch the file again",
        };
        EngineError::Load(format!(
            "{} is not a usable GGUF file: {e}; {fix}",
            path.display()
        ))
    })
}
