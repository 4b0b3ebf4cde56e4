//! The drain order: after every input (`handle_event`, `handle_timeout`) a driver empties the
//! core in this order, and nothing else:
//!
//! 1. every notice, in the order the core emitted them;
//! 2. every decision, in order: each is carried out by the [`World`] (a launch, a stop with
//!    grace, a rejection), then logged. Carrying out a launch may feed the core its
//!    acknowledgement (`JobStarted`), which can yield more notices and decisions;
//! 3. back to 1 until the core has nothing more to say;
//! 4. the next timeout, which the world arms.
//!
//! The simulator and the executor both drain through [`drain`], so the decision log of one can
//! be compared line by line with the other's (`tessera conform`).

use tessera_core::{Allocation, Decision, JobId, Notice, PreemptReason, RejectReason, Scheduler, Time};

/// A driver's world, as the drain loop sees it: where decisions are carried out.
pub trait World {
    type Error;
    /// The scheduler this world drives.
    fn scheduler(&mut self) -> &mut Scheduler;
    /// Starts `job` on `allocation` (or records the launch, to carry it out once durable).
    fn launch(&mut self, now: Time, job: JobId, allocation: &Allocation) -> Result<(), Self::Error>;
    /// Stops `job`: SIGTERM, then the world ends it after `grace` (or at once for a failure).
    fn stop(&mut self, now: Time, job: JobId, grace: Time, reason: &PreemptReason) -> Result<(), Self::Error>;
    /// The job will never run.
    fn reject(&mut self, now: Time, job: JobId, reason: &RejectReason) -> Result<(), Self::Error>;
    /// Logs a decision once it was carried out.
    fn log_decision(&mut self, now: Time, decision: Decision) -> Result<(), Self::Error>;
    /// Records a notice.
    fn notice(&mut self, now: Time, notice: Notice) -> Result<(), Self::Error>;
    /// Arms the core's next timeout (`None`: no timer is due).
    fn arm(&mut self, now: Time, at: Option<Time>);
    /// A buffer for the decisions of one round, kept between drains so that draining
    /// allocates nothing. Default: a fresh one.
    fn take_buffer(&mut self) -> Vec<Decision> {
        Vec::new()
    }
    fn put_buffer(&mut self, _buffer: Vec<Decision>) {}
}

/// Empties the core after an input, in the documented order, and arms its next timeout.
pub fn drain<W: World>(world: &mut W, now: Time) -> Result<(), W::Error> {
    let mut buffer = world.take_buffer();
    loop {
        while let Some(notice) = world.scheduler().poll_notice() {
            world.notice(now, notice)?;
        }
        buffer.extend(std::iter::from_fn(|| world.scheduler().poll_decision()));
        if buffer.is_empty() {
            break;
        }
        for decision in buffer.drain(..) {
            carry_out(world, now, decision)?;
        }
    }
    world.put_buffer(buffer);
    let at = world.scheduler().poll_timeout();
    world.arm(now, at);
    Ok(())
}

/// Carries out one decision in `world`, then logs it. [`drain`] does this for every decision;
/// a driver calls it directly only for decisions that do not come from `poll_decision` (a
/// rejection found while restoring its jobs after a restart).
pub fn carry_out<W: World>(world: &mut W, now: Time, decision: Decision) -> Result<(), W::Error> {
    match &decision {
        Decision::Launch { job, allocation, .. } => world.launch(now, *job, allocation)?,
        Decision::Preempt { job, grace, reason } => world.stop(now, *job, *grace, reason)?,
        Decision::Reject { job, reason } => world.reject(now, *job, reason)?,
    }
    world.log_decision(now, decision)
}
