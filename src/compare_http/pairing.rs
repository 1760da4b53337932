//! Interleaved or in blocks: whether the in-process engine and its server can hold the model at
//! the same time. Interleaving (ABBA) cancels a noisy machine's drift; blocks (every in-process run,
//! unload, every HTTP run) are for a GPU that holds only one copy of the model.

use crate::suite::Pairing;

/// What one copy of the engine needs on one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceNeed {
    /// The device (`CUDA0`, `cuda`).
    pub device: String,
    /// Bytes one copy takes there (weights, KV cache, compute buffers).
    pub one_copy_bytes: u64,
    /// The device's memory, when known.
    pub total_bytes: Option<u64>,
}

/// The share of a device's memory two copies may fill before blocks are chosen: the rest is left
/// for the CUDA context, fragmentation and other processes.
pub const FIT_SHARE: f64 = 0.9;

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30))
}

/// The mode to run and why. `needs` lists the GPUs one copy uses; empty when it runs on the CPU
/// (the server then maps the same model file, so no second copy of device memory is needed).
pub fn choose(requested: Pairing, needs: &[DeviceNeed]) -> (Pairing, String) {
    match requested {
        Pairing::Interleaved => return (Pairing::Interleaved, "asked with --pairing".into()),
        Pairing::Blocks => return (Pairing::Blocks, "asked with --pairing".into()),
        Pairing::Auto => {}
    }
    if needs.is_empty() {
        return (
            Pairing::Interleaved,
            "the model runs on the CPU: the server maps the same file, both fit".into(),
        );
    }
    let mut fits = Vec::new();
    for n in needs {
        let Some(total) = n.total_bytes else {
            return (
                Pairing::Blocks,
                format!(
                    "the memory of {} is unknown, so two copies may not fit",
                    n.device
                ),
            );
        };
        let two = 2 * n.one_copy_bytes;
        if two as f64 > FIT_SHARE * total as f64 {
            return (
                Pairing::Blocks,
                format!(
                    "two copies need {} of {}'s {} (more than {:.0} %)",
                    gib(two),
                    n.device,
                    gib(total),
                    FIT_SHARE * 100.0
                ),
            );
        }
        fits.push(format!("{} of {}'s {}", gib(two), n.device, gib(total)));
    }
    (
        Pairing::Interleaved,
        format!("two copies fit: {}", fits.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(one: u64, total: Option<u64>) -> DeviceNeed {
        DeviceNeed {
            device: "CUDA0".into(),
            one_copy_bytes: one,
            total_bytes: total,
        }
    }

    #[test]
    fn cpu_models_interleave() {
        assert_eq!(choose(Pairing::Auto, &[]).0, Pairing::Interleaved);
    }

    #[test]
    fn a_gpu_that_holds_one_copy_gets_blocks() {
        let gib = 1u64 << 30;
        // An 8B Q4_K_M (about 5 GiB with its KV cache) on a 16 GiB card: both fit.
        let (mode, why) = choose(Pairing::Auto, &[need(5 * gib, Some(16 * gib))]);
        assert_eq!(mode, Pairing::Interleaved, "{why}");
        // An 8B Q8_0 with a long context (9 GiB) on the same card: blocks.
        let (mode, why) = choose(Pairing::Auto, &[need(9 * gib, Some(16 * gib))]);
        assert_eq!(mode, Pairing::Blocks);
        assert!(why.contains("18.00 GiB of CUDA0's 16.00 GiB"), "{why}");
        // Unknown memory: blocks, the safe choice.
        assert_eq!(choose(Pairing::Auto, &[need(1, None)]).0, Pairing::Blocks);
    }

    #[test]
    fn an_explicit_choice_wins() {
        assert_eq!(choose(Pairing::Blocks, &[]).0, Pairing::Blocks);
        let gib = 1u64 << 30;
        let (mode, _) = choose(Pairing::Interleaved, &[need(9 * gib, Some(16 * gib))]);
        assert_eq!(mode, Pairing::Interleaved);
    }
}
