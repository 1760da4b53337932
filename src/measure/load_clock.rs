//! Load time: how long making an engine ready took (the model file read and checked, weights
//! loaded, a context made, a server reached), timed by the caller around the engine's constructor
//! with [`time_load`]. Engines never read the clock for it: a constructor that has phases worth
//! telling apart (vLLM: Python started, then the engine built) marks them on the [`LoadClock`] it
//! is handed, and the engine receives the figures once it exists ([`LoadTimed::loaded_in`]).

use std::time::Instant;

/// The clock of one load, handed to the constructor so that it can mark its phases.
#[derive(Debug)]
pub struct LoadClock {
    started: Instant,
    phases: Vec<(&'static str, f64)>,
}

impl LoadClock {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            phases: Vec::new(),
        }
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1e3
    }

    /// Marks the end of the phase `name`: the time from the start of the load to now.
    pub fn mark(&mut self, name: &'static str) {
        let at = self.elapsed_ms();
        self.phases.push((name, at));
    }
}

/// What one load took.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadTime {
    /// From the call of the constructor to its return, milliseconds.
    pub ms: f64,
    /// The phases the constructor marked: each one's end, milliseconds from the start, in order.
    pub phases: Vec<(&'static str, f64)>,
}

impl LoadTime {
    /// When the phase `name` ended, milliseconds from the start of the load.
    pub fn phase(&self, name: &str) -> Option<f64> {
        self.phases.iter().find(|(n, _)| *n == name).map(|p| p.1)
    }
}

/// An engine that keeps the time its load took.
pub trait LoadTimed {
    /// Called once after every load or reconfiguration with what it took. An engine that was
    /// reconfigured (a new context on a loaded model) adds it to what its first load took.
    fn loaded_in(&mut self, load: &LoadTime);
}

/// Runs the constructor `load` and hands the engine the time it took.
pub fn time_load<T: LoadTimed, E>(
    load: impl FnOnce(&mut LoadClock) -> Result<T, E>,
) -> Result<T, E> {
    let mut clock = LoadClock::start();
    let mut engine = load(&mut clock)?;
    let time = LoadTime {
        ms: clock.elapsed_ms(),
        phases: clock.phases,
    };
    engine.loaded_in(&time);
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<LoadTime>);

    impl LoadTimed for Fake {
        fn loaded_in(&mut self, load: &LoadTime) {
            self.0.push(load.clone());
        }
    }

    #[test]
    fn the_engine_gets_its_load_time_and_the_phases_it_marked() {
        let e = time_load(|clock| {
            clock.mark("first");
            clock.mark("second");
            Ok::<_, ()>(Fake(Vec::new()))
        })
        .unwrap();
        let [t] = e.0.as_slice() else {
            panic!("loaded_in was not called once: {:?}", e.0)
        };
        let (first, second) = (t.phase("first").unwrap(), t.phase("second").unwrap());
        assert!(0.0 <= first && first <= second && second <= t.ms, "{t:?}");
        assert_eq!(t.phase("third"), None);
    }

    #[test]
    fn a_failed_load_is_returned_as_is() {
        let e = time_load(|_| Err::<Fake, _>("no model"));
        assert_eq!(e.err(), Some("no model"));
    }
}
