//! The arithmetic of GPU telemetry, apart from the driver bindings so that every build (and CI,
//! which has no GPU) compiles and tests it: power and energy from NVML's counter or samples, energy
//! per token, and NVML's spelling of a device UUID.

/// Mean power (W) and energy (J) over `elapsed_s`: from NVML's energy counter (millijoules since
/// driver load) where it moved, otherwise from the mean of the power samples.
pub fn power_and_energy(
    counter_mj: Option<(u64, u64)>,
    power_w: &[f64],
    elapsed_s: f64,
) -> (Option<f64>, Option<f64>) {
    if let Some((start, end)) = counter_mj {
        if end > start && elapsed_s > 0.0 {
            let energy_j = (end - start) as f64 / 1000.0;
            return (Some(energy_j / elapsed_s), Some(energy_j));
        }
    }
    if power_w.is_empty() {
        return (None, None);
    }
    let mean_w = power_w.iter().sum::<f64>() / power_w.len() as f64;
    (
        Some(mean_w),
        (elapsed_s > 0.0).then_some(mean_w * elapsed_s),
    )
}

/// Energy per generated token (J), when there is an energy figure and at least one token.
pub fn energy_per_token(energy_j: Option<f64>, tokens: u64) -> Option<f64> {
    energy_j.filter(|_| tokens > 0).map(|j| j / tokens as f64)
}

/// NVML's spelling of a CUDA device UUID: "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
pub fn format_uuid(bytes: &[std::ffi::c_char; 16]) -> String {
    let mut s = String::from("GPU-");
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{:02x}", *b as u8));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_from_the_counter_where_it_moved() {
        // Counter moved 50 J in 2 s: 25 W; the samples are not used.
        assert_eq!(
            power_and_energy(Some((1_000, 51_000)), &[99.0], 2.0),
            (Some(25.0), Some(50.0))
        );
    }

    #[test]
    fn energy_from_the_samples_where_the_counter_did_not_move() {
        // Coarse counter, short window: mean of the samples times the time.
        assert_eq!(
            power_and_energy(Some((5, 5)), &[10.0, 30.0], 0.5),
            (Some(20.0), Some(10.0))
        );
        assert_eq!(
            power_and_energy(None, &[10.0, 30.0], 0.5),
            (Some(20.0), Some(10.0))
        );
        // A counter that went back (driver reload) is not trusted either.
        assert_eq!(
            power_and_energy(Some((9, 5)), &[4.0], 2.0),
            (Some(4.0), Some(8.0))
        );
    }

    #[test]
    fn no_reading_is_null_not_zero() {
        assert_eq!(power_and_energy(None, &[], 1.0), (None, None));
        assert_eq!(power_and_energy(Some((1, 2)), &[], 0.0), (None, None));
        // Power without a time span gives no energy.
        assert_eq!(power_and_energy(None, &[7.0], 0.0), (Some(7.0), None));
    }

    #[test]
    fn energy_per_token_needs_energy_and_tokens() {
        assert_eq!(energy_per_token(Some(50.0), 100), Some(0.5));
        assert_eq!(energy_per_token(Some(50.0), 0), None);
        assert_eq!(energy_per_token(None, 100), None);
    }

    #[test]
    fn uuid_is_spelled_as_nvml_does() {
        let bytes: [std::ffi::c_char; 16] = std::array::from_fn(|i| i as std::ffi::c_char);
        assert_eq!(
            format_uuid(&bytes),
            "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        let high: [std::ffi::c_char; 16] = [0xffu8 as std::ffi::c_char; 16];
        assert_eq!(
            format_uuid(&high),
            "GPU-ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
    }
}
