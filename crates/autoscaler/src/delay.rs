//! The scale-down delay: the largest desired count of the last `delay` (Knative's
//! `scale-down-delay`, its `max.TimeWindow`). Scale-up passes through at once; a lower
//! count only comes out once it has held for the whole delay, which keeps instances the
//! load no longer needs idle and warm for that long.

use std::collections::VecDeque;
use std::time::Duration;

/// Sliding-window maximum over `(time, count)` records.
#[derive(Debug, Clone)]
pub struct ScaleDownDelay {
    delay: Duration,
    /// Records with strictly decreasing counts, oldest first: the front is the maximum.
    records: VecDeque<(Duration, u32)>,
}

impl ScaleDownDelay {
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            records: VecDeque::new(),
        }
    }

    /// Records `count` at `now` and returns the largest count recorded in
    /// `(now - delay, now]` (just `count` when the delay is zero).
    pub fn apply(&mut self, now: Duration, count: u32) -> u32 {
        if self.delay.is_zero() {
            return count;
        }
        while self.records.back().is_some_and(|&(_, c)| c <= count) {
            self.records.pop_back();
        }
        self.records.push_back((now, count));
        while self
            .records
            .front()
            .is_some_and(|&(at, _)| at + self.delay <= now)
        {
            self.records.pop_front();
        }
        self.records.front().map_or(count, |&(_, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_maximum_for_the_delay() {
        let mut d = ScaleDownDelay::new(Duration::from_secs(10));
        let s = Duration::from_secs;
        assert_eq!(d.apply(s(0), 5), 5);
        assert_eq!(d.apply(s(2), 3), 5);
        assert_eq!(d.apply(s(4), 8), 8);
        assert_eq!(d.apply(s(13), 2), 8);
        assert_eq!(d.apply(s(14), 2), 2);
        assert_eq!(d.apply(s(15), 1), 2);
        assert_eq!(d.apply(s(30), 1), 1);
    }

    #[test]
    fn zero_delay_passes_through() {
        let mut d = ScaleDownDelay::new(Duration::ZERO);
        assert_eq!(d.apply(Duration::ZERO, 5), 5);
        assert_eq!(d.apply(Duration::ZERO, 1), 1);
    }
}
