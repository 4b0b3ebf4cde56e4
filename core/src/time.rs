//! Simulated or wall-clock instants and spans as integer microseconds.
//!
//! An integer, never a float, so that event order is exact and a run is reproducible
//! byte for byte: two events a float would round together stay apart here.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// Microseconds since the run's epoch (an instant), or a span of microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);
    pub const MAX: Time = Time(u64::MAX);
    pub const MICROS_PER_SEC: u64 = 1_000_000;

    pub const fn from_micros(us: u64) -> Time {
        Time(us)
    }

    pub const fn from_secs(s: u64) -> Time {
        Time(s.saturating_mul(Self::MICROS_PER_SEC))
    }

    /// Rounds to the nearest microsecond; negative and NaN become zero, huge values saturate.
    /// Saturation is a silent change of value, so every number read from outside is checked
    /// against [`crate::limits`] first (100 years is 3.2e15 µs, far below `Time::MAX`).
    pub fn from_secs_f64(s: f64) -> Time {
        if s.is_nan() || s <= 0.0 {
            return Time::ZERO;
        }
        let us = (s * Self::MICROS_PER_SEC as f64).round();
        if us >= u64::MAX as f64 {
            Time::MAX
        } else {
            Time(us as u64)
        }
    }

    pub const fn as_micros(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Self::MICROS_PER_SEC as f64
    }

    pub fn saturating_sub(self, other: Time) -> Time {
        Time(self.0.saturating_sub(other.0))
    }
}

impl Add for Time {
    type Output = Time;
    fn add(self, rhs: Time) -> Time {
        Time(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Time {
    fn add_assign(&mut self, rhs: Time) {
        *self = *self + rhs;
    }
}

impl Sub for Time {
    type Output = Time;
    /// Saturates at zero: a span is never negative.
    fn sub(self, rhs: Time) -> Time {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_trip_and_saturate() {
        assert_eq!(Time::from_secs_f64(1.5).as_micros(), 1_500_000);
        assert_eq!(Time::from_secs_f64(-3.0), Time::ZERO);
        assert_eq!(Time::from_secs_f64(f64::NAN), Time::ZERO);
        assert_eq!(Time::from_secs_f64(1e300), Time::MAX);
        assert_eq!(Time(5) - Time(9), Time::ZERO);
        assert_eq!(Time::MAX + Time(1), Time::MAX);
    }
}
