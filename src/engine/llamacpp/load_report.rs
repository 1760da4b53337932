//! llama.cpp's own report of a model load, read from its log: how many layers it offloaded and
//! which backend buffers hold the weights and the KV cache, which devices it used (RPC workers
//! included) and where each layer went. This is what actually ran, whatever `--n-gpu-layers` asked
//! for (a build without a GPU backend offloads nothing).

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

/// A device the model was loaded onto (`using device RPC0 (127.0.0.1:50052) … - N MiB free`).
#[derive(Debug, Clone, PartialEq)]
pub struct UsedDevice {
    /// ggml's device name (`RPC0`, `CUDA0`).
    pub name: String,
    /// Its description (an RPC device's is the worker's `host:port`).
    pub description: String,
    /// Free memory when the model loaded, in bytes (llama.cpp prints whole MiB).
    pub free_bytes: u64,
}

/// llama.cpp's load report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// `offloaded N/M layers to GPU`; absent when the build has no GPU backend (nothing offloaded).
    pub offloaded: Option<(u32, u32)>,
    /// Weight, KV cache and compute buffers, in the order reported.
    pub buffers: Vec<Buffer>,
    /// Devices other than the CPU that the model was loaded onto, in llama.cpp's order.
    pub devices: Vec<UsedDevice>,
    /// The device of each repeating layer, by layer index (`CPU` for layers kept on the host).
    pub layer_devices: Vec<String>,
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
            if let Some(rest) = line.split("using device ").nth(1) {
                // `RPC0 (127.0.0.1:50052) (unknown id) - 7906 MiB free`
                if let Some((name, rest)) = rest.split_once(" (") {
                    let description = rest.split_once(')').map_or("", |(d, _)| d);
                    let free = rest
                        .rsplit_once(" - ")
                        .and_then(|(_, f)| f.split_whitespace().next()?.parse::<u64>().ok());
                    r.devices.push(UsedDevice {
                        name: name.trim().to_string(),
                        description: description.to_string(),
                        free_bytes: free.unwrap_or(0) * 1024 * 1024,
                    });
                }
                continue;
            }
            if let Some(rest) = line.split("load_tensors: layer ").nth(1) {
                // `  3 assigned to device RPC0, is_swa = 0`
                if let Some((n, dev)) = rest.split_once(" assigned to device ") {
                    let dev = dev.split(',').next().unwrap_or("").trim();
                    if let Ok(n) = n.trim().parse::<usize>() {
                        if r.layer_devices.len() <= n {
                            r.layer_devices.resize(n + 1, String::new());
                        }
                        r.layer_devices[n] = dev.to_string();
                    }
                }
                continue;
            }
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
                    // `load_tensors: RPC0[127.0.0.1:50052] model buffer size`: the name follows the
                    // function's name and may hold colons itself.
                    let name = head.split_once(':').map_or(head, |(_, n)| n).trim();
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
        // With the RPC backend compiled in, llama.cpp prints `offloaded N/M layers to GPU` even
        // when it has no device to offload to; the layer assignments say what really happened.
        if !r.layer_devices.is_empty() {
            let n = r
                .layer_devices
                .iter()
                .filter(|d| d.as_str() != "CPU")
                .count();
            r.offloaded =
                (!r.devices.is_empty()).then_some((n as u32, r.layer_devices.len() as u32));
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

    /// Whether buffer `name` lives on `device` (an RPC buffer is named `RPCk[host:port]` after
    /// its worker, the device `RPCn` with the worker as its description).
    fn buffer_on(name: &str, device: &UsedDevice) -> bool {
        name == device.name
            || (device.name.starts_with("RPC")
                && name.ends_with(&format!("[{}]", device.description)))
    }

    /// Per device (the CPU first, then llama.cpp's devices): the layers it holds and its memory,
    /// free at load and held by the model's weights, KV cache and compute buffers.
    pub fn per_device(&self) -> Vec<Value> {
        let cpu = UsedDevice {
            name: "CPU".into(),
            description: "host".into(),
            free_bytes: 0,
        };
        std::iter::once(&cpu)
            .chain(&self.devices)
            .map(|d| {
                let is_cpu = d.name == "CPU";
                let mut bytes = Map::new();
                for holds in ["model", "kv", "compute"] {
                    let sum: u64 = self
                        .buffers
                        .iter()
                        .filter(|b| b.holds == holds)
                        .filter(|b| {
                            if is_cpu {
                                device_of(&b.name) == "CPU"
                            } else {
                                Self::buffer_on(&b.name, d)
                            }
                        })
                        .map(|b| b.bytes)
                        .sum();
                    bytes.insert(holds.to_string(), json!(sum));
                }
                let layers: Vec<usize> = (0..self.layer_devices.len())
                    .filter(|&i| self.layer_devices[i] == d.name)
                    .collect();
                json!({
                    "name": d.name,
                    "description": d.description,
                    "free_bytes_at_load": (!is_cpu).then_some(d.free_bytes),
                    "layers": ranges(&layers),
                    "n_layers": layers.len(),
                    "buffers_bytes": bytes,
                })
            })
            .collect()
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
            "devices": self.per_device(),
            "source": "llama.cpp load log (llama_model_load, load_tensors, llama_kv_cache, llama_context)",
        })
    }
}

/// Layer indices as ranges: `0-9,20`.
fn ranges(layers: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let start = layers[i];
        let mut end = start;
        while i + 1 < layers.len() && layers[i + 1] == end + 1 {
            i += 1;
            end = layers[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
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
    fn rpc_workers_are_reported_with_their_layers_and_memory() {
        let r = LoadReport::parse(&lines(
            "llama_model_load_from_file_impl: using device RPC0 (127.0.0.1:50052) (unknown id) - 7906 MiB free\n\
             llama_model_load_from_file_impl: using device RPC1 (127.0.0.1:50053) (unknown id) - 7000 MiB free\n\
             load_tensors: layer   0 assigned to device CPU, is_swa = 0\n\
             load_tensors: layer   1 assigned to device RPC0, is_swa = 0\n\
             load_tensors: layer   2 assigned to device RPC0, is_swa = 0\n\
             load_tensors: layer   3 assigned to device RPC1, is_swa = 0\n\
             load_tensors: offloaded 3/4 layers to GPU\n\
             load_tensors: RPC0[127.0.0.1:50052] model buffer size =    10.00 MiB\n\
             load_tensors: RPC0[127.0.0.1:50053] model buffer size =     5.00 MiB\n\
             load_tensors:   CPU_Mapped model buffer size =     1.00 MiB\n\
             llama_kv_cache: RPC0[127.0.0.1:50052] KV buffer size =     2.00 MiB",
        ));
        assert_eq!(r.devices.len(), 2);
        assert_eq!(r.devices[1].description, "127.0.0.1:50053");
        assert_eq!(r.devices[0].free_bytes, 7906 * 1024 * 1024);
        assert_eq!(r.layer_devices, vec!["CPU", "RPC0", "RPC0", "RPC1"]);
        assert_eq!(r.buffers[0].name, "RPC0[127.0.0.1:50052]");
        let d = r.per_device();
        assert_eq!(d[0]["name"], "CPU");
        assert_eq!(d[0]["layers"], "0");
        assert_eq!(d[1]["layers"], "1-2");
        assert_eq!(d[1]["buffers_bytes"]["model"], 10 * 1024 * 1024);
        assert_eq!(d[1]["buffers_bytes"]["kv"], 2 * 1024 * 1024);
        assert_eq!(d[2]["n_layers"], 1);
        assert_eq!(d[2]["buffers_bytes"]["model"], 5 * 1024 * 1024);
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(r.offloaded, Some((3, 4)));
    }

    #[test]
    fn an_rpc_build_without_devices_offloads_nothing_whatever_it_prints() {
        let r = LoadReport::parse(&lines(
            "load_tensors: layer   0 assigned to device CPU, is_swa = 0\n\
             load_tensors: layer   1 assigned to device CPU, is_swa = 0\n\
             load_tensors: offloaded 2/2 layers to GPU",
        ));
        assert_eq!(r.offloaded, None);
    }

    #[test]
    fn host_buffers_count_as_cpu() {
        assert_eq!(device_of("CUDA_Host"), "CPU");
        assert_eq!(device_of("CPU_REPACK"), "CPU");
        assert_eq!(device_of("CUDA1"), "CUDA1");
    }
}
