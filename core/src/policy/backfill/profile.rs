//! Conservative backfilling's profile of one device model: how many whole devices are
//! expected free and unreserved, as a step function of time.
//!
//! Devices of one model are interchangeable for a reservation (the placement picks the nodes
//! when the job starts), so counts are enough: if at every instant the reservations active on
//! a model ask for no more devices than are expected free, then taking devices for each
//! reservation when it starts, in start order, always finds them (each running job and each
//! earlier reservation holds its devices for one unbroken interval). That argument is why the
//! profile never tracks which device a reservation will get.

use crate::time::Time;

/// `free[i]` devices on `[times[i], times[i + 1])`; the last segment lasts for ever. The
/// first segment starts at the pass's `now`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct FreeProfile {
    times: Vec<Time>,
    free: Vec<i32>,
}

impl FreeProfile {
    /// From the devices free now and, in time order, how many more become free at each later
    /// time.
    pub fn from_counts(now: Time, free_now: i32, later: impl Iterator<Item = (Time, u32)>) -> FreeProfile {
        let mut p = FreeProfile { times: Vec::new(), free: Vec::new() };
        p.reset(now, free_now, later);
        p
    }

    /// `from_counts` in place, keeping the buffers.
    pub fn reset(&mut self, now: Time, free_now: i32, later: impl Iterator<Item = (Time, u32)>) {
        self.times.clear();
        self.free.clear();
        self.times.push(now);
        self.free.push(free_now);
        let mut last = free_now;
        for (t, n) in later {
            debug_assert!(t > *self.times.last().expect("not empty"));
            last += n as i32;
            self.times.push(t);
            self.free.push(last);
        }
    }

    pub fn start(&self) -> Time {
        self.times[0]
    }

    /// Moves the start to a later `now`; the caller has checked that no change of the
    /// profile falls in between.
    pub fn restart_at(&mut self, now: Time) {
        debug_assert!(self.times.get(1).is_none_or(|&t| t > now));
        self.times[0] = now;
    }

    /// The segment holding `t` (at or after the start).
    fn segment(&self, t: Time) -> usize {
        self.times.partition_point(|&x| x <= t).saturating_sub(1)
    }

    /// Devices free at `t`.
    pub fn at(&self, t: Time) -> i32 {
        self.free[self.segment(t)]
    }

    /// The fewest free over `[from, to)`; `i32::MAX` for an empty interval.
    pub fn min_over(&self, from: Time, to: Time) -> i32 {
        if from >= to {
            return i32::MAX;
        }
        let mut j = self.segment(from);
        let mut min = self.free[j];
        j += 1;
        while j < self.times.len() && self.times[j] < to {
            min = min.min(self.free[j]);
            j += 1;
        }
        min
    }

    /// The earliest t in `[from, to)` at which fewer than `need` are free.
    pub fn first_below(&self, from: Time, to: Time, need: i32) -> Option<Time> {
        if from >= to {
            return None;
        }
        let mut j = self.segment(from);
        while j < self.times.len() && self.times[j] < to {
            if self.free[j] < need {
                return Some(self.times[j].max(from));
            }
            j += 1;
        }
        None
    }

    /// The earliest t, at or after the start, at which at least `needed` are free throughout
    /// `[t, t + duration)` (`None`: for ever). Only a segment start can be the first such t.
    pub fn earliest(&self, needed: i32, duration: Option<Time>) -> Option<Time> {
        let n = self.times.len();
        let mut i = 0;
        'candidates: while i < n {
            if self.free[i] < needed {
                i += 1;
                continue;
            }
            let t = self.times[i];
            let end = duration.map_or(Time::MAX, |d| super::add_or_never(t, d));
            let mut j = i + 1;
            while j < n && self.times[j] < end {
                if self.free[j] < needed {
                    i = j + 1;
                    continue 'candidates;
                }
                j += 1;
            }
            return Some(t);
        }
        None
    }

    /// The segment starts in `[from, to)`, after the one holding `from`.
    pub fn starts_within(&self, from: Time, to: Time) -> impl Iterator<Item = Time> + '_ {
        let first = self.times.partition_point(|&x| x <= from);
        self.times[first..].iter().copied().take_while(move |&t| t < to)
    }

    /// Adds `delta` devices over `[from, to)` (`to = Time::MAX`: for ever).
    pub fn add(&mut self, from: Time, to: Time, delta: i32) {
        let from = from.max(self.start());
        if from >= to {
            return;
        }
        let a = self.split(from);
        let b = if to == Time::MAX { self.times.len() } else { self.split(to) };
        for v in &mut self.free[a..b] {
            *v += delta;
        }
    }

    /// Merges segments that have the same count as the one before (left by `add`s that
    /// cancelled out).
    pub fn coalesce(&mut self) {
        let mut w = 1;
        for r in 1..self.times.len() {
            if self.free[r] != self.free[w - 1] {
                self.times[w] = self.times[r];
                self.free[w] = self.free[r];
                w += 1;
            }
        }
        self.times.truncate(w);
        self.free.truncate(w);
    }

    /// Makes `t` a segment start; its index.
    fn split(&mut self, t: Time) -> usize {
        let i = self.segment(t);
        if self.times[i] == t {
            return i;
        }
        self.times.insert(i + 1, t);
        self.free.insert(i + 1, self.free[i]);
        i + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Time {
        Time::from_secs(secs)
    }

    /// 4 devices: two free now (10), one at 20, one at 40.
    fn four() -> FreeProfile {
        FreeProfile::from_counts(s(10), 2, [(s(20), 1), (s(40), 1)].into_iter())
    }

    #[test]
    fn counts_devices_as_they_become_free() {
        let p = four();
        assert_eq!((p.at(s(10)), p.at(s(19)), p.at(s(20)), p.at(s(39)), p.at(s(40)), p.at(s(1000))), (2, 2, 3, 3, 4, 4));
        assert_eq!(p.min_over(s(15), s(45)), 2);
        assert_eq!(p.min_over(s(20), s(45)), 3);
        assert_eq!(p.min_over(s(20), s(20)), i32::MAX);
    }

    #[test]
    fn the_earliest_start_needs_the_whole_window() {
        let mut p = four();
        assert_eq!(p.earliest(2, Some(s(100))), Some(s(10)));
        assert_eq!(p.earliest(3, None), Some(s(20)));
        assert_eq!(p.earliest(5, Some(s(1))), None);
        // Reserve 3 over [20, 30): 0 free there, 1 from 30 to 40.
        p.add(s(20), s(30), -3);
        assert_eq!((p.at(s(20)), p.at(s(30)), p.at(s(40))), (0, 3, 4));
        // 2 devices for 5 s fit before the reservation, for 15 s only after it.
        assert_eq!(p.earliest(2, Some(s(5))), Some(s(10)));
        assert_eq!(p.earliest(2, Some(s(15))), Some(s(30)));
        assert_eq!(p.earliest(4, Some(s(1))), Some(s(40)));
        assert_eq!(p.first_below(s(10), s(50), 1), Some(s(20)));
        assert_eq!(p.first_below(s(12), s(20), 2), None);
        // Taking it back restores the counts; the breakpoints it left merge away.
        p.add(s(20), s(30), 3);
        assert_eq!((p.at(s(20)), p.at(s(30))), (3, 3));
        p.coalesce();
        assert_eq!(p, four());
        assert_eq!(p.earliest(3, None), Some(s(20)));
    }

    #[test]
    fn a_zero_length_window_still_needs_the_devices_at_its_start() {
        let p = four();
        assert_eq!(p.earliest(3, Some(Time::ZERO)), Some(s(20)));
    }

    #[test]
    fn restarting_later_keeps_the_counts() {
        let mut p = four();
        p.restart_at(s(15));
        assert_eq!((p.start(), p.at(s(15)), p.at(s(20))), (s(15), 2, 3));
        assert_eq!(p.starts_within(s(15), s(41)).collect::<Vec<_>>(), vec![s(20), s(40)]);
    }
}
