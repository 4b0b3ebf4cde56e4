//! The driver layer: what both drivers of the core (the simulator and the executor) must do
//! identically, written once.
//!
//! - [`policy`]: building a policy from its spec and its context (tenant table, speed matrix,
//!   device models), and the fingerprint of what was built, which the validation gate
//!   compares.
//! - [`drive`]: the one order in which a driver empties the core after every input.
//! - [`ledger`]: each job's accounting (submit, runs, run time, preemptions, restarts, end),
//!   kept by the same calls in both drivers.
//! - [`speed`]: the speed matrix's sources (`[[speed]]` entries, `speed_table` files), read
//!   the same way for a scenario and for `exec.toml`.
//! - [`toml_input`]: TOML deserialized with the key path, line and column of a failure, for
//!   every file a person writes (scenario, `exec.toml`, job spec, policy file).
//!
//! **Architecture invariant:** no I/O but reading a speed-table file, no clock, no tokio: the
//! simulator's hot loop calls [`drive::drain`].

pub mod drive;
pub mod ledger;
pub mod policy;
pub mod speed;
pub mod toml_input;

pub use drive::{carry_out, drain, World};
pub use ledger::{JobLedger, StopCause};
pub use policy::{build_policy, BuiltPolicy, PolicyContext};
