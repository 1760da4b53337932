//! `--tensor-split` in-process: llama-cpp-2 0.1.160 keeps `LlamaModelParams::tensor_split`
//! private, so a model with a tensor split is loaded through llama.cpp's C API directly (the same
//! default parameters the crate starts from) and handed to the crate as its own `LlamaModel`.

use std::ffi::CString;
use std::path::Path;
use std::ptr::NonNull;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::LlamaModelLoadError;

use super::SplitMode;
use crate::engine::EngineError;

/// What a load with a tensor split needs: the offload, the split mode, the devices (`None`: every
/// GPU-like device llama.cpp knows) and one share per device.
pub(super) struct SplitLoad<'a> {
    pub n_gpu_layers: i32,
    pub split_mode: SplitMode,
    pub devices: Option<&'a [usize]>,
    pub shares: &'a [f32],
    /// `--tensor-split` as the user wrote it, for error lines.
    pub label: &'a str,
}

/// The devices a split goes over: the ones named, else every GPU-like device ggml knows (GPUs and
/// RPC workers' devices, which llama.cpp offloads to by default).
fn device_count(devices: Option<&[usize]>) -> usize {
    match devices {
        Some(d) => d.len(),
        None => super::rpc::offload_device_count(),
    }
}

impl SplitLoad<'_> {
    /// Refuses a split llama.cpp would misread: no device to split over, more shares than
    /// devices, or shares that add up to nothing.
    pub fn check(&self) -> Result<(), EngineError> {
        let n = device_count(self.devices);
        let label = self.label;
        if n == 0 {
            return Err(EngineError::Load(format!(
                "--tensor-split {label}: there is no device to split over (no GPU, no --rpc worker); start workers with --rpc or leave --tensor-split out"
            )));
        }
        if self.shares.len() > n {
            return Err(EngineError::Load(format!(
                "--tensor-split {label}: {} shares for {n} device{}; give at most one share per device (in --device order, RPC devices first)",
                self.shares.len(),
                if n == 1 { "" } else { "s" }
            )));
        }
        if self.shares.len() > llama_cpp_2::max_devices() {
            return Err(EngineError::Load(format!(
                "--tensor-split {label}: this llama.cpp build takes at most {} shares",
                llama_cpp_2::max_devices()
            )));
        }
        if self.shares.iter().all(|s| *s <= 0.0) {
            return Err(EngineError::Load(format!(
                "--tensor-split {label}: every share is 0; give each device a positive share, or write 0 alone to split by free memory"
            )));
        }
        Ok(())
    }

    /// Loads the model with the split (call [`Self::check`] first).
    pub fn load(&self, path: &Path) -> Result<LlamaModel, LlamaModelLoadError> {
        let text = path
            .to_str()
            .ok_or_else(|| LlamaModelLoadError::PathToStrError(path.to_path_buf()))?;
        let c_path = CString::new(text)?;
        let mut shares = self.shares.to_vec();
        shares.resize(llama_cpp_2::max_devices().max(shares.len()), 0.0);
        let mut devices: Vec<llama_cpp_sys_2::ggml_backend_dev_t> = Vec::new();
        if let Some(indices) = self.devices {
            for &i in indices {
                // SAFETY: `i` is an index rpc::device_indices found in ggml's device list, which
                // only grows; the device handle lives for the process.
                devices.push(unsafe { llama_cpp_sys_2::ggml_backend_dev_get(i) });
            }
            devices.push(std::ptr::null_mut());
        }
        // SAFETY: returns a plain struct of defaults.
        let mut params = unsafe { llama_cpp_sys_2::llama_model_default_params() };
        params.n_gpu_layers = self.n_gpu_layers;
        params.split_mode = match self.split_mode {
            SplitMode::None => llama_cpp_sys_2::LLAMA_SPLIT_MODE_NONE,
            SplitMode::Layer => llama_cpp_sys_2::LLAMA_SPLIT_MODE_LAYER,
            SplitMode::Row => llama_cpp_sys_2::LLAMA_SPLIT_MODE_ROW,
            SplitMode::Tensor => llama_cpp_sys_2::LLAMA_SPLIT_MODE_TENSOR,
        };
        params.tensor_split = shares.as_ptr();
        if !devices.is_empty() {
            params.devices = devices.as_mut_ptr();
        }
        // SAFETY: `c_path` is NUL-terminated; `shares` holds llama_max_devices() floats and
        // `devices` is NULL-terminated, both alive until the call returns (llama.cpp copies them).
        let raw = unsafe { llama_cpp_sys_2::llama_model_load_from_file(c_path.as_ptr(), params) };
        let model = NonNull::new(raw).ok_or(LlamaModelLoadError::NullResult)?;
        Ok(into_model(model))
    }
}

/// Hands a model llama.cpp loaded to llama-cpp-2, which frees it when dropped.
fn into_model(model: NonNull<llama_cpp_sys_2::llama_model>) -> LlamaModel {
    const _: () = assert!(
        std::mem::size_of::<LlamaModel>() == std::mem::size_of::<NonNull<u8>>()
            && std::mem::align_of::<LlamaModel>() == std::mem::align_of::<NonNull<u8>>()
    );
    // SAFETY: `LlamaModel` is `#[repr(transparent)]` over the crate's `Ptr`, itself
    // `#[repr(transparent)]` over `NonNull<llama_model>` (llama-cpp-2 =0.1.160, pinned), so both
    // have the same layout; the pointer is a model llama.cpp just loaded and nothing else owns,
    // which is what the crate's own `load_from_file` wraps.
    unsafe { std::mem::transmute::<NonNull<llama_cpp_sys_2::llama_model>, LlamaModel>(model) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split<'a>(devices: Option<&'a [usize]>, shares: &'a [f32], label: &'a str) -> SplitLoad<'a> {
        SplitLoad {
            n_gpu_layers: 99,
            split_mode: SplitMode::Layer,
            devices,
            shares,
            label,
        }
    }

    #[test]
    fn splits_llama_cpp_would_misread_are_refused() {
        let e = split(Some(&[]), &[3.0, 1.0], "3/1")
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("no device to split over"), "{e}");
        let e = split(Some(&[0, 1]), &[3.0, 1.0, 1.0], "3/1/1")
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 shares for 2 devices"), "{e}");
        let e = split(Some(&[0, 1]), &[0.0, 0.0], "0/0")
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("every share is 0"), "{e}");
        assert!(split(Some(&[0, 1]), &[3.0, 1.0], "3/1").check().is_ok());
        assert!(split(Some(&[0, 1]), &[1.0], "1").check().is_ok());
    }
}
