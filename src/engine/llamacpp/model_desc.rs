//! llama.cpp's own one-line description of a model (`llama_model_desc`: architecture, size class
//! and file type, e.g. `llama 256M Q4_1`), the text llama-bench writes as `model_type`.

use std::ffi::{c_char, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The model's description as llama.cpp gives it, from a load that reads the GGUF's metadata
/// and simulates the allocations (`no_alloc`: no tensor data is read; a vocabulary-only load
/// would stop before llama.cpp classifies the model); `None` when llama.cpp cannot read the
/// file. `llama-cpp-2` keeps a loaded model's pointer private, so the header is read a second
/// time through the C API. The llama.cpp backend must be initialised.
pub fn model_desc(path: &Path) -> Option<String> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0 as c_char; 256];
    // SAFETY: the params come from llama.cpp's defaults; `c_path` is NUL-terminated and outlives
    // the load; the model pointer is checked for null, used only while alive, and freed once;
    // `llama_model_desc` writes at most `buf.len()` bytes, NUL-terminated.
    let written = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_default_params();
        params.no_alloc = true;
        params.load_mode = llama_cpp_sys_2::LLAMA_LOAD_MODE_NONE;
        params.n_gpu_layers = 0;
        let model = llama_cpp_sys_2::llama_model_load_from_file(c_path.as_ptr(), params);
        if model.is_null() {
            return None;
        }
        let n = llama_cpp_sys_2::llama_model_desc(model, buf.as_mut_ptr(), buf.len());
        llama_cpp_sys_2::llama_model_free(model);
        n
    };
    if written <= 0 {
        return None;
    }
    // SAFETY: snprintf NUL-terminated the buffer (it holds at most buf.len() − 1 characters).
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(text.to_string_lossy().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_model_is_described_as_llama_bench_does() {
        super::super::load::backend(false).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let model = root.join("models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            model.is_file(),
            "no {}: run scripts/fetch-model.sh",
            model.display()
        );
        assert_eq!(model_desc(&model).as_deref(), Some("llama 256M Q4_1"));
        assert_eq!(model_desc(&root.join("Cargo.toml")), None);
    }
}
