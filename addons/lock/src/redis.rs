//! Leases on Redis: `SET NX PX` with a token counter, in Lua scripts.

use std::time::Duration;

use futures::future::BoxFuture;
use kinesis::lease::{Lease, LeaseBackend, LeaseError, LeaseResult};
use kinesis::persist::redact_url;
use kinesis::{Error, Result};
use redis::aio::ConnectionManager;
use redis::Script;

/// Takes the lease (`KEYS[1]` = holder `ARGV[1]`, expiring in `ARGV[2]` ms)
/// if nobody holds it, and then draws the next token from `KEYS[2]`;
/// answers the token, or 0 when the lease is held.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
";

/// Extends the lease by `ARGV[2]` ms if `ARGV[1]` still holds it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Frees the lease if `ARGV[1]` still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Leases on a Redis server; see the [crate docs](crate). Keys:
/// `kinesis:lease:{NAME}` (the holder, expiring) and
/// `kinesis:lease:{NAME}:token` (the counter; the braces keep both in one
/// cluster slot).
pub struct RedisLeases {
    conn: ConnectionManager,
    display: String,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl std::fmt::Debug for RedisLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLeases").field("url", &self.display).finish()
    }
}

fn keys(name: &str) -> (String, String) {
    (format!("kinesis:lease:{{{name}}}"), format!("kinesis:lease:{{{name}}}:token"))
}

fn backend(e: redis::RedisError) -> LeaseError {
    LeaseError::Backend(format!("redis: {e}"))
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisLeases {
    /// Connects to `url` (`redis://host:port/db`) and checks it answers.
    /// Reconnects by itself when the connection breaks.
    pub async fn connect(url: &str) -> Result<RedisLeases> {
        let display = redact_url(url);
        let fail = |e: redis::RedisError| {
            Error::Config(format!("KINESIS_LOCK_URL: cannot connect to {display}: {e}"))
        };
        let client = redis::Client::open(url).map_err(fail)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(1);
        let connect = ConnectionManager::new_with_config(client, config);
        let mut conn = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| {
                Error::Config(format!("KINESIS_LOCK_URL: {display} did not answer in 10s"))
            })?
            .map_err(fail)?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(fail)?;
        Ok(RedisLeases {
            conn,
            display,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        })
    }
}

impl LeaseBackend for RedisLeases {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn acquire<'a>(
        &'a self,
        name: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, LeaseResult<Option<Lease>>> {
        Box::pin(async move {
            let (key, token_key) = keys(name);
            let holder = format!("{:032x}", rand::random::<u128>());
            let mut conn = self.conn.clone();
            let token: u64 = self
                .acquire
                .key(&key)
                .key(&token_key)
                .arg(&holder)
                .arg(millis(ttl))
                .invoke_async(&mut conn)
                .await
                .map_err(backend)?;
            Ok((token > 0).then(|| Lease { name: name.to_owned(), token, holder }))
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl: Duration) -> BoxFuture<'a, LeaseResult<bool>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let renewed: i64 = self
                .renew
                .key(keys(&lease.name).0)
                .arg(&lease.holder)
                .arg(millis(ttl))
                .invoke_async(&mut conn)
                .await
                .map_err(backend)?;
            Ok(renewed == 1)
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, LeaseResult<()>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: i64 = self
                .release
                .key(keys(&lease.name).0)
                .arg(&lease.holder)
                .invoke_async(&mut conn)
                .await
                .map_err(backend)?;
            Ok(())
        })
    }
}
