//! The bounds on every number tessera takes from outside: scenario files, traces, job
//! submissions, the executor's configuration and its journal. Validation refuses what lies
//! beyond them, naming the bound, so that no later conversion can overflow or saturate: a
//! `Time` holds 584,000 years of microseconds and a `std::time::Duration` far more, so a
//! value inside these bounds converts, adds and multiplies safely, and one outside them is
//! almost always a typo or a corrupt row rather than a plan.
//!
//! The figures are documented in README.md and exec/README.md; change them there too.

/// The longest span or latest instant, in seconds: 100 years of 365.25 days. It bounds every
/// duration (job run times, time limits, stated durations, grace periods, intervals) and every
/// arrival time (seconds from the trace's or run's start).
pub const MAX_DURATION_S: f64 = 100.0 * 365.25 * 86_400.0;

/// How [`MAX_DURATION_S`] reads in messages.
pub const MAX_DURATION_TEXT: &str = "3155760000 s (100 years)";

/// The most devices one job may ask for.
pub const MAX_DEVICES_PER_JOB: u32 = 1_000_000;

/// The most jobs one synthetic workload may hold (a million take about 0.5 GiB).
pub const MAX_JOBS: u64 = 100_000_000;

/// The most attempts after a failure to start a job.
pub const MAX_RETRIES: u32 = 100;

/// The most memory one job may ask for, in MiB (1 EiB).
pub const MAX_MEM_MIB: u64 = 1 << 40;

/// Checks a number of seconds against `[0, MAX_DURATION_S]` (or `(0, MAX_DURATION_S]` when
/// `allow_zero` is false); the error says what was expected, with the bound, and what was found.
pub fn check_secs(value: f64, allow_zero: bool) -> Result<f64, String> {
    let low_ok = if allow_zero { value >= 0.0 } else { value > 0.0 };
    if value.is_finite() && low_ok && value <= MAX_DURATION_S {
        return Ok(value);
    }
    let low = if allow_zero { "[0" } else { "(0" };
    Err(format!("expected a number of seconds in {low}, {MAX_DURATION_S}], found {value:?}; the bound is {MAX_DURATION_TEXT}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Time;

    #[test]
    fn the_duration_bound_is_100_years_and_converts_without_saturating() {
        assert_eq!(MAX_DURATION_S, 3_155_760_000.0);
        assert!(MAX_DURATION_TEXT.starts_with("3155760000 s"));
        let t = Time::from_secs_f64(MAX_DURATION_S);
        assert!(t < Time::MAX && t.0.checked_mul(1000).is_some(), "{t}");
        assert!(std::time::Duration::try_from_secs_f64(MAX_DURATION_S).is_ok());
    }

    #[test]
    fn check_secs_refuses_what_lies_outside_and_names_the_bound() {
        assert_eq!(check_secs(0.0, true), Ok(0.0));
        assert_eq!(check_secs(MAX_DURATION_S, false), Ok(MAX_DURATION_S));
        for (v, zero) in [(0.0, false), (-1.0, true), (f64::NAN, true), (f64::INFINITY, true), (1e20, true), (MAX_DURATION_S * 1.000001, true)] {
            let e = check_secs(v, zero).unwrap_err();
            assert!(e.contains("100 years") && e.contains(&format!("found {v:?}")), "{v}: {e}");
        }
    }
}
