//! tessera-sim: the discrete-event simulator.
//!
//! One total order of events: a heap on `(time, sequence)`, where equal times keep insertion
//! order. The world (how fast a job runs on a device, when it finishes, what a preemption
//! costs) lives here; every decision comes from `tessera_core::Scheduler`.
//!
//! **Architecture invariant:** every random draw comes from a generator seeded from the run's
//! seed; nothing reads the clock except the wall-time measurement reported beside results.

pub mod dist;
pub mod engine;
pub mod fill;
pub mod models;
pub mod progress;
pub mod runner;
pub mod scenario;
pub mod series;
pub mod speed;
pub mod validate;
pub mod workload;
