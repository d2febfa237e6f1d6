//! The per-client rate limit of the precheck: a token bucket per connector and client, in
//! memory (a restart forgets it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// Token buckets by (connector, client).
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    /// Takes one request of `client` at `now` from a bucket of `per_minute` requests that
    /// refills evenly over a minute; `Err` is the wait, in whole seconds, until the next one.
    pub fn take(
        &self,
        connector: &str,
        client: &str,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), u64> {
        let capacity = f64::from(per_minute);
        let per_sec = capacity / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| b.refilled(now, per_sec, capacity) < capacity);
        }
        let bucket = buckets
            .entry((connector.to_string(), client.to_string()))
            .or_insert(Bucket {
                tokens: capacity,
                at: now,
            });
        bucket.tokens = bucket.refilled(now, per_sec, capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec);
            Err(wait.as_secs_f64().ceil().max(1.0) as u64)
        }
    }
}

impl Bucket {
    fn refilled(&self, now: Instant, per_sec: f64, capacity: f64) -> f64 {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + secs * per_sec).min(capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_minute_then_waits_and_others_are_apart() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("c", "a", 3, t0), Ok(()));
        }
        assert_eq!(limiter.take("c", "a", 3, t0), Err(20));
        assert_eq!(limiter.take("c", "b", 3, t0), Ok(()));
        assert_eq!(limiter.take("other", "a", 3, t0), Ok(()));
        assert_eq!(
            limiter.take("c", "a", 3, t0 + Duration::from_secs(20)),
            Ok(())
        );
        assert_eq!(
            limiter.take("c", "a", 3, t0 + Duration::from_secs(25)),
            Err(15)
        );
    }
}
