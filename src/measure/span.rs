//! A span timed on the one clock: llama-bench's tests time a whole prompt evaluation or a whole
//! run of single-token decodes, so the measurement wraps the work, never sits inside it.

use std::time::Instant;

/// Runs `work` and returns its result with the nanoseconds it took (monotonic clock).
pub fn time_ns<T>(work: impl FnOnce() -> T) -> (T, u64) {
    let start = Instant::now();
    let out = work();
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    (out, ns)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_span_returns_the_result_and_a_duration() {
        let (v, ns) = super::time_ns(|| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            7
        });
        assert_eq!(v, 7);
        assert!(ns >= 2_000_000);
    }
}
