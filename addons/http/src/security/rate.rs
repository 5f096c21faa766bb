//! Per-client rate limiting with the `governor` crate (GCRA, keyed by the
//! client's IP address).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::RateLimit;
use crate::problem::Problem;

/// Checks between sweeps of clients that are back to a full allowance.
const SWEEP_EVERY: u32 = 4096;

/// The limiter of one router.
pub(crate) struct Limiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    checks: AtomicU32,
    rate: RateLimit,
}

impl Limiter {
    pub(crate) fn new(rate: RateLimit) -> Limiter {
        let per_request = rate.period / rate.count.get();
        let quota = Quota::with_period(per_request.max(std::time::Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(rate.count);
        Limiter {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU32::new(0),
            rate,
        }
    }

    /// 429 with `Retry-After` (whole seconds, at least 1) when `client` is over its rate.
    pub(crate) fn check(&self, client: IpAddr) -> Result<(), Problem> {
        // Forget clients whose allowance is full again, so the table holds
        // only recent clients.
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&client) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let retry = HeaderValue::from(secs.max(1));
                Err(Problem::new_status(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-requests",
                    format!(
                        "more than {} requests in {:?} from this client (KINESIS_HTTP_RATE_LIMIT); retry in {}s",
                        self.rate.count,
                        self.rate.period,
                        secs.max(1)
                    ),
                )
                .with_header_value(RETRY_AFTER, retry))
            }
        }
    }
}
