//! llama.cpp's own report of a model load, read from its log: how many layers it offloaded and
//! which backend buffers hold the weights and the KV cache. This is what actually ran, whatever
//! `--n-gpu-layers` asked for (a build without a GPU backend offloads nothing).

use std::ffi::{c_char, c_void, CStr};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

/// What the log callback does with llama.cpp's lines.
struct Capture {
    /// Print every line on stderr (`--verbose`).
    echo: bool,
    /// Keep lines (during a load).
    active: bool,
    /// A line still missing its end.
    partial: String,
    /// Complete lines kept while active.
    lines: Vec<String>,
}

static CAPTURE: Mutex<Capture> = Mutex::new(Capture {
    echo: false,
    active: false,
    partial: String::new(),
    lines: Vec::new(),
});

unsafe extern "C" fn on_log(
    _level: llama_cpp_sys_2::ggml_log_level,
    text: *const c_char,
    _: *mut c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string that stays valid for this call; it is
    // copied out before returning.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let Ok(mut c) = CAPTURE.lock() else {
        return;
    };
    if c.echo {
        eprint!("{text}");
    }
    if c.active {
        c.partial.push_str(&text);
        while let Some(end) = c.partial.find('\n') {
            let line: String = c.partial.drain(..=end).collect();
            c.lines.push(line.trim_end().to_string());
        }
    }
}

/// Sends llama.cpp's and ggml's logs to this module: kept during [`capture`], printed on stderr
/// when `echo` holds, dropped otherwise.
pub fn install(echo: bool) {
    if let Ok(mut c) = CAPTURE.lock() {
        c.echo = echo;
    }
    // SAFETY: registers a callback with the signature llama.cpp expects; it never unwinds (it
    // only locks a mutex and copies the text) and takes no user data. llama_log_set also sets
    // ggml's logger.
    unsafe { llama_cpp_sys_2::llama_log_set(Some(on_log), std::ptr::null_mut()) };
}

/// Runs `f` and returns its value with the log lines llama.cpp wrote meanwhile.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    if let Ok(mut c) = CAPTURE.lock() {
        c.active = true;
        c.lines.clear();
        c.partial.clear();
    }
    let out = f();
    let lines = CAPTURE
        .lock()
        .map(|mut c| {
            c.active = false;
            std::mem::take(&mut c.lines)
        })
        .unwrap_or_default();
    (out, lines)
}

/// One backend buffer of the load report.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// Buffer name as llama.cpp prints it (`CPU_Mapped`, `CUDA0`, `CUDA_Host`).
    pub name: String,
    /// What it holds: `model`, `kv` or `compute`.
    pub holds: &'static str,
    /// Size in bytes (llama.cpp prints MiB with two decimals).
    pub bytes: u64,
}

/// llama.cpp's load report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// `offloaded N/M layers to GPU`; absent when the build has no GPU backend (nothing offloaded).
    pub offloaded: Option<(u32, u32)>,
    /// Weight, KV cache and compute buffers, in the order reported.
    pub buffers: Vec<Buffer>,
}

/// The device a buffer lives on: `CPU` for host buffers (`CPU_Mapped`, `CPU_REPACK`, `CUDA_Host`),
/// else the device name (`CUDA0`).
pub fn device_of(buffer: &str) -> String {
    let base = buffer
        .trim_end_matches("_Mapped")
        .trim_end_matches("_REPACK");
    if base.starts_with("CPU") || base.ends_with("_Host") {
        "CPU".into()
    } else {
        base.to_string()
    }
}

fn mib(text: &str) -> Option<u64> {
    let v: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((v * 1024.0 * 1024.0).round() as u64)
}

impl LoadReport {
    /// Reads the lines llama.cpp logged while loading a model and creating its context.
    pub fn parse(lines: &[String]) -> Self {
        let mut r = Self::default();
        for line in lines {
            if let Some(rest) = line.split("offloaded ").nth(1) {
                if let Some((n, m)) = rest.split_once('/') {
                    let m: String = m.chars().take_while(char::is_ascii_digit).collect();
                    if let (Ok(n), Ok(m)) = (n.trim().parse(), m.parse()) {
                        r.offloaded = Some((n, m));
                    }
                }
                continue;
            }
            for (marker, holds) in [
                (" model buffer size =", "model"),
                (" KV buffer size =", "kv"),
                (" compute buffer size =", "compute"),
            ] {
                if let Some((head, size)) = line.split_once(marker) {
                    let name = head.rsplit(':').next().unwrap_or("").trim();
                    if let (false, Some(bytes)) = (name.is_empty(), mib(size)) {
                        r.buffers.push(Buffer {
                            name: name.to_string(),
                            holds,
                            bytes,
                        });
                    }
                }
            }
        }
        r
    }

    /// The devices holding the model's weights, in order (`CPU`, `CUDA0`).
    pub fn weight_devices(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for b in self.buffers.iter().filter(|b| b.holds == "model") {
            let d = device_of(&b.name);
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// Layers offloaded and offloadable (`0/n` without a GPU backend, `n_layer + 1` counting the
    /// output layer, as llama.cpp counts).
    pub fn layers(&self, n_layer: u32) -> (u32, u32) {
        self.offloaded.unwrap_or((0, n_layer + 1))
    }

    /// The report as recorded in the results (`details.offload`).
    pub fn to_json(&self, n_layer: u32, requested: i32) -> Value {
        let (n, m) = self.layers(n_layer);
        let mut buffers = Map::new();
        for b in &self.buffers {
            buffers.insert(format!("{}:{}", b.holds, b.name), json!(b.bytes));
        }
        json!({
            "n_gpu_layers_requested": requested,
            "layers_offloaded": n,
            "layers_total": m,
            "weight_devices": self.weight_devices(),
            "buffers_bytes": buffers,
            "source": "llama.cpp load log (load_tensors, llama_kv_cache, llama_context)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_cpu_build_reports_no_offload_and_cpu_buffers() {
        let r = LoadReport::parse(&lines(
            "load_tensors: loading model tensors, this can take a while... (mmap = true)\n\
             load_tensors:   CPU_Mapped model buffer size =    83.75 MiB\n\
             llama_kv_cache:        CPU KV buffer size =    90.00 MiB\n\
             llama_context:        CPU compute buffer size =   164.51 MiB",
        ));
        assert_eq!(r.offloaded, None);
        assert_eq!(r.layers(30), (0, 31));
        assert_eq!(r.weight_devices(), vec!["CPU".to_string()]);
        assert_eq!(r.buffers.len(), 3);
        assert_eq!(r.buffers[0].bytes, (83.75 * 1048576.0) as u64);
        assert_eq!(r.buffers[1].holds, "kv");
    }

    #[test]
    fn a_gpu_build_reports_layers_and_devices() {
        let r = LoadReport::parse(&lines(
            "load_tensors: offloading output layer to GPU\n\
             load_tensors: offloading 29 repeating layers to GPU\n\
             load_tensors: offloaded 30/37 layers to GPU\n\
             load_tensors:        CUDA0 model buffer size =  4155.99 MiB\n\
             load_tensors:   CPU_Mapped model buffer size =   333.84 MiB",
        ));
        assert_eq!(r.offloaded, Some((30, 37)));
        assert_eq!(r.weight_devices(), vec!["CUDA0".to_string(), "CPU".into()]);
        let j = r.to_json(36, 30);
        assert_eq!(j["layers_offloaded"], 30);
        assert_eq!(j["layers_total"], 37);
        assert_eq!(j["n_gpu_layers_requested"], 30);
    }

    #[test]
    fn host_buffers_count_as_cpu() {
        assert_eq!(device_of("CUDA_Host"), "CPU");
        assert_eq!(device_of("CPU_REPACK"), "CPU");
        assert_eq!(device_of("CUDA1"), "CUDA1");
    }
}
