//! When a run stops starting repositories, from the Lambda deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Most time kept back from the Lambda deadline for in-flight repositories to finish.
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(30);

/// Deadlines before 2000-01-01 are not real Lambda deadlines: local emulators send 0 or a
/// duration (cargo-lambda sends 600000 ms) instead of a time.
const EARLIEST_REAL_DEADLINE: Duration = Duration::from_secs(946_684_800);

/// When to stop starting repositories, given the invocation's deadline: the deadline less a
/// reserve of [`DEADLINE_RESERVE`] or a quarter of the time left, whichever is smaller.
/// None when the deadline is not a real one. `now` and `clock` are the same moment on the
/// wall clock and on tokio's clock.
pub fn stop_starting_at(deadline: SystemTime, now: SystemTime, clock: Instant) -> Option<Instant> {
    if deadline < UNIX_EPOCH + EARLIEST_REAL_DEADLINE {
        tracing::warn!(?deadline, "no usable Lambda deadline; running without one");
        return None;
    }
    let left = deadline.duration_since(now).unwrap_or(Duration::ZERO);
    let reserve = DEADLINE_RESERVE.min(left / 4);
    Some(clock + (left - reserve))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_reserve() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_482_400); // 2025-11-30T06:00:00Z
        let clock = Instant::now();
        let at = |left_s: u64| {
            stop_starting_at(start + Duration::from_secs(left_s), start, clock).map(|t| t - clock)
        };
        assert_eq!(at(900), Some(Duration::from_secs(870)), "30 s reserve");
        assert_eq!(
            at(40),
            Some(Duration::from_secs(30)),
            "a quarter of a short budget"
        );
        assert_eq!(
            stop_starting_at(UNIX_EPOCH, start, clock),
            None,
            "no deadline"
        );
        let cargo_lambda = UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(
            stop_starting_at(cargo_lambda, start, clock),
            None,
            "cargo-lambda's duration is not a deadline"
        );
        assert_eq!(
            stop_starting_at(start - Duration::from_secs(5), start, clock),
            Some(clock),
            "deadline already passed"
        );
    }
}
