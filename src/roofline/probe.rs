//! The memory-bandwidth probe: a STREAM-like read kernel. N threads each sum their share of a
//! buffer much larger than the last-level cache (64-bit words, vectorised by the compiler), all
//! starting together; one repetition's figure is the buffer's bytes over the time from the first
//! thread's start until the last thread is done, as the threads stamp them. Best, median and worst of several repetitions are
//! reported (STREAM reports the best), and the sustained rate: all repetitions' bytes over their
//! summed time (what likwid-bench reports), in GB/s of 10⁹ bytes as both count. `min_time` keeps
//! repeating until the timed reads add up to it, so that the sustained rate covers as long a read
//! as a reference that runs for a second or more.
//!
//! Each thread writes its share first (so every page is real memory, placed near the thread that
//! reads it; untouched zero pages would be read from the cache) and that pass is not timed.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The buffer is at least this large.
pub const MIN_BUFFER: u64 = 256 << 20;
/// … and at most this large.
pub const MAX_BUFFER: u64 = 2 << 30;
/// … and this many times the last-level cache.
pub const CACHE_MULTIPLE: u64 = 8;
/// The longest `min_time` the probe accepts.
pub const MAX_MIN_TIME: Duration = Duration::from_secs(600);

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Threads reading at once.
    pub threads: usize,
    /// Buffer size in bytes (rounded down to whole 64-byte lines per thread).
    pub buffer_bytes: u64,
    /// Timed repetitions, at least.
    pub reps: u32,
    /// Repeat until the timed reads add up to at least this long (zero: exactly `reps`).
    pub min_time: Duration,
}

/// What the probe measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeResult {
    /// `read`: each thread sums its share of the buffer.
    pub kernel: String,
    /// Threads reading at once.
    pub threads: usize,
    /// Bytes read per repetition.
    pub buffer_bytes: u64,
    /// Last-level cache of the CPU, when the system says (`/sys/devices/system/cpu`).
    pub llc_bytes: Option<u64>,
    /// Timed repetitions (more than asked when `min_time` needed them).
    pub reps: u32,
    /// The timed reads' summed time.
    pub timed_ms: f64,
    /// Sustained rate: all repetitions' bytes over `timed_ms` (GB/s), the aggregate likwid-bench
    /// reports; below the median when a few repetitions were slow.
    pub sustained_gbps: f64,
    /// Best repetition (GB/s, 10⁹ bytes per second): the measured peak.
    pub best_gbps: f64,
    /// Median repetition (GB/s).
    pub median_gbps: f64,
    /// Worst repetition (GB/s).
    pub min_gbps: f64,
    /// Every repetition, in order (GB/s).
    pub samples_gbps: Vec<f64>,
    /// The whole probe, allocation and first touch included.
    pub elapsed_ms: f64,
}

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nonsense options.
    #[error("{0}")]
    Options(String),
}

/// The last-level cache of CPU 0 in bytes, from `/sys/devices/system/cpu/cpu0/cache`.
pub fn last_level_cache() -> Option<u64> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    let mut best: Option<(u32, u64)> = None;
    for e in dir.flatten() {
        let p = e.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).ok();
        let (Some(level), Some(size)) = (read("level"), read("size")) else {
            continue;
        };
        let Ok(level) = level.trim().parse::<u32>() else {
            continue;
        };
        let size = size.trim();
        let bytes = if let Some(k) = size.strip_suffix('K') {
            k.parse::<u64>().ok().map(|k| k << 10)
        } else if let Some(m) = size.strip_suffix('M') {
            m.parse::<u64>().ok().map(|m| m << 20)
        } else {
            size.parse::<u64>().ok()
        };
        if let Some(bytes) = bytes {
            if best.is_none_or(|(l, _)| level > l) {
                best = Some((level, bytes));
            }
        }
    }
    best.map(|(_, b)| b)
}

/// The default buffer: `CACHE_MULTIPLE` × the last-level cache, between `MIN_BUFFER` and
/// `MAX_BUFFER`, and at most a quarter of the available memory.
pub fn default_buffer_bytes(llc: Option<u64>, available_memory: Option<u64>) -> u64 {
    let want = llc
        .map_or(MIN_BUFFER, |c| c.saturating_mul(CACHE_MULTIPLE))
        .clamp(MIN_BUFFER, MAX_BUFFER);
    match available_memory {
        Some(m) if m / 4 < want => (m / 4).max(64 << 20),
        _ => want,
    }
}

/// Available memory in bytes, when the system says.
pub fn available_memory() -> Option<u64> {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    Some(sys.available_memory()).filter(|&m| m > 0)
}

/// Sums a slice of words; the compiler vectorises it (integer addition is associative).
#[inline(never)]
fn sum(words: &[u64]) -> u64 {
    words.iter().fold(0u64, |a, &w| a.wrapping_add(w))
}

/// Runs the read kernel.
pub fn run(opts: ProbeOptions) -> Result<ProbeResult, ProbeError> {
    if opts.threads == 0 || opts.reps == 0 {
        return Err(ProbeError::Options(
            "the probe needs at least one thread and one repetition".into(),
        ));
    }
    if opts.min_time > MAX_MIN_TIME {
        return Err(ProbeError::Options(format!(
            "the probe reads for at most {} s",
            MAX_MIN_TIME.as_secs()
        )));
    }
    let started = Instant::now();
    // Whole 64-byte lines per thread.
    let words_per_thread = (opts.buffer_bytes / opts.threads as u64 / 64) * 8;
    if words_per_thread == 0 {
        return Err(ProbeError::Options(format!(
            "a buffer of {} bytes is too small for {} threads",
            opts.buffer_bytes, opts.threads
        )));
    }
    let words = usize::try_from(words_per_thread * opts.threads as u64).map_err(|_| {
        ProbeError::Options(format!(
            "a buffer of {} bytes is too large",
            opts.buffer_bytes
        ))
    })?;
    // Zeroed memory is mapped lazily: no page is touched until the threads write their shares.
    let mut buf: Vec<u64> = vec![0; words];
    let bytes = words as u64 * 8;
    let barrier = Barrier::new(opts.threads + 1);
    // Set before a start signal when there is no next repetition; the barrier orders it.
    let done = AtomicBool::new(false);
    // Each thread stamps its own start and end: the coordinating thread may wake late after a
    // start signal (on a machine with as many cores as readers it waits for one), so a stamp of
    // its own would miss the pass's beginning and overstate the rate.
    let now = Instant::now();
    let stamps: Vec<Mutex<(Instant, Instant)>> =
        (0..opts.threads).map(|_| Mutex::new((now, now))).collect();
    let mut times: Vec<Duration> = Vec::with_capacity(opts.reps as usize);
    std::thread::scope(|s| {
        let shares = buf.chunks_mut(words_per_thread as usize);
        for (t, (share, stamp)) in shares.zip(&stamps).enumerate() {
            let (barrier, done) = (&barrier, &done);
            s.spawn(move || {
                for (i, w) in share.iter_mut().enumerate() {
                    *w = (i as u64 ^ ((t as u64) << 48)) | 1;
                }
                let share: &[u64] = share;
                barrier.wait();
                loop {
                    barrier.wait();
                    if done.load(Ordering::Acquire) {
                        break;
                    }
                    let start = Instant::now();
                    black_box(sum(black_box(share)));
                    let end = Instant::now();
                    *stamp.lock().unwrap_or_else(PoisonError::into_inner) = (start, end);
                    barrier.wait();
                }
            });
        }
        barrier.wait();
        let mut timed = Duration::ZERO;
        loop {
            let more = times.len() < opts.reps as usize || timed < opts.min_time;
            done.store(!more, Ordering::Release);
            barrier.wait();
            if !more {
                break;
            }
            barrier.wait();
            // From the first thread's start to the last one's end.
            let (mut first, mut last) = (None::<Instant>, None::<Instant>);
            for stamp in &stamps {
                let (a, b) = *stamp.lock().unwrap_or_else(PoisonError::into_inner);
                first = Some(first.map_or(a, |f| f.min(a)));
                last = Some(last.map_or(b, |l| l.max(b)));
            }
            let d = match (first, last) {
                (Some(a), Some(b)) => b.saturating_duration_since(a),
                _ => Duration::ZERO,
            };
            timed += d;
            times.push(d);
        }
    });
    let timed: Duration = times.iter().sum();
    let mut samples: Vec<f64> = times.iter().map(|&d| gbps(bytes, d)).collect();
    let in_order = samples.clone();
    samples.sort_by(f64::total_cmp);
    let median = if !samples.len().is_multiple_of(2) {
        samples[samples.len() / 2]
    } else {
        (samples[samples.len() / 2 - 1] + samples[samples.len() / 2]) / 2.0
    };
    Ok(ProbeResult {
        kernel: "read".into(),
        threads: opts.threads,
        buffer_bytes: bytes,
        llc_bytes: last_level_cache(),
        reps: u32::try_from(times.len()).unwrap_or(u32::MAX),
        timed_ms: timed.as_secs_f64() * 1e3,
        sustained_gbps: gbps(bytes * times.len() as u64, timed),
        best_gbps: samples[samples.len() - 1],
        median_gbps: median,
        min_gbps: samples[0],
        samples_gbps: in_order,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9) / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_size_follows_the_cache_and_memory() {
        assert_eq!(default_buffer_bytes(None, None), MIN_BUFFER);
        assert_eq!(default_buffer_bytes(Some(48 << 20), None), 384 << 20);
        assert_eq!(default_buffer_bytes(Some(1 << 30), None), MAX_BUFFER);
        assert_eq!(
            default_buffer_bytes(Some(48 << 20), Some(1 << 30)),
            256 << 20
        );
    }

    #[test]
    fn a_small_probe_measures_a_positive_rate() {
        let r = run(ProbeOptions {
            threads: 2,
            buffer_bytes: 8 << 20,
            reps: 3,
            min_time: Duration::ZERO,
        })
        .expect("runs");
        assert_eq!(r.samples_gbps.len(), 3);
        assert!(r.best_gbps > 0.0 && r.min_gbps <= r.median_gbps && r.median_gbps <= r.best_gbps);
        assert!(r.min_gbps <= r.sustained_gbps && r.sustained_gbps <= r.best_gbps);
        assert_eq!(r.buffer_bytes, 8 << 20);
    }

    #[test]
    fn a_minimum_time_adds_repetitions_until_it_is_read() {
        let r = run(ProbeOptions {
            threads: 1,
            buffer_bytes: 1 << 20,
            reps: 1,
            min_time: Duration::from_millis(30),
        })
        .expect("runs");
        assert!(r.reps > 1 && r.samples_gbps.len() == r.reps as usize);
        assert!(r.timed_ms >= 30.0);
        // The sustained rate is the bytes of every repetition over their summed time.
        let want = (1u64 << 20) as f64 * f64::from(r.reps) / (r.timed_ms / 1e3) / 1e9;
        assert!((r.sustained_gbps - want).abs() <= 1e-9 * want);
    }

    #[test]
    fn nonsense_options_are_errors() {
        let opts = ProbeOptions {
            threads: 0,
            buffer_bytes: 1 << 20,
            reps: 1,
            min_time: Duration::ZERO,
        };
        assert!(run(opts).is_err());
        assert!(run(ProbeOptions {
            threads: 4,
            buffer_bytes: 64,
            reps: 1,
            min_time: Duration::ZERO,
        })
        .is_err());
        assert!(run(ProbeOptions {
            threads: 1,
            buffer_bytes: 1 << 20,
            reps: 1,
            min_time: MAX_MIN_TIME + Duration::from_secs(1),
        })
        .is_err());
    }
}
