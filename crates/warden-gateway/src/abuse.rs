//! Budgets for what anyone can reach without credentials, or with a session but without the
//! one-time code: sign-in (`/v1/login`, the UI form, the break-glass credential), client
//! authentication at `/oauth/token`, and step-up (which votes use).
//!
//! Three bounds, each answering one way of abusing those doors:
//! - **Guessing one person's secrets**: the per-person lock-out, in the store
//!   (`IdentityStore::begin_attempt`, atomic, survives restarts; see `logins::attempts`).
//! - **Guessing from one address**: failures per client address (an IPv4 address, or an IPv6
//!   /64) in a token bucket, [`PER_ADDRESS_BURST`] at once and [`PER_ADDRESS_PER_MINUTE`] a
//!   minute after that; past it the door answers `429` before any hash runs. Memory is
//!   bounded: at most [`MAX_ADDRESSES`] addresses are tracked, and when the table is full
//!   and no bucket has refilled, every new address shares one bucket — a flood from many
//!   addresses slows itself down and can never push a throttled address out of the table
//!   (only a refilled bucket, equal to a fresh one, is ever dropped).
//! - **Flooding the ledger**: records of failures anyone can cause share a budget of
//!   [`RECORDS_PER_MINUTE`]; past it failures are counted, and the next record that gets in
//!   carries `suppressed` (how many were not written), so nothing is hidden, only summed.
//!   A throttled address's refusal is recorded once per minute, not per request.
//!
//! The per-address buckets and the record budget live in memory: a restart forgets them
//! (the lock-outs, which protect the accounts, are stored). Without a peer address (a router
//! mounted without `ConnectInfo`, as in-process tests do) every client shares one bucket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::serve::IncomingStream;

/// Failures one address may make at once.
pub const PER_ADDRESS_BURST: u32 = 20;
/// Failures one address may make per minute once its burst is spent.
pub const PER_ADDRESS_PER_MINUTE: u32 = 10;
/// Addresses tracked at most.
pub const MAX_ADDRESSES: usize = 65_536;
/// Failure records written per minute at most; the rest are counted.
pub const RECORDS_PER_MINUTE: u32 = 120;

/// The peer address of a connection, as the listener saw it (for either listener).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// The client's address, when the router was served with `ConnectInfo<PeerAddr>`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<PeerAddr>>()
                .map(|c| c.0 .0.ip()),
        ))
    }
}

/// What an address is keyed by: IPv4 whole, IPv6 by its /64 (one subscriber's prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Unknown,
    V4(u32),
    V6(u64),
}

impl Key {
    fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(|ip| ip.to_canonical()) {
            None => Self::Unknown,
            Some(IpAddr::V4(v4)) => Self::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => Self::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// When this address's refusal was last recorded.
    reported: Option<Instant>,
}

impl Bucket {
    fn full(now: Instant) -> Self {
        Self {
            tokens: f64::from(PER_ADDRESS_BURST),
            at: now,
            reported: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        let rate = f64::from(PER_ADDRESS_PER_MINUTE) / 60.0;
        self.tokens = (self.tokens + secs * rate).min(f64::from(PER_ADDRESS_BURST));
        self.at = now;
    }

    fn is_full(&self) -> bool {
        self.tokens >= f64::from(PER_ADDRESS_BURST)
    }
}

/// An address past its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until one more attempt is allowed.
    pub retry_after_secs: u64,
    /// Whether this refusal should be recorded (the first in its minute).
    pub record: bool,
}

#[derive(Debug)]
struct Budget {
    window: Instant,
    written: u32,
    suppressed: u64,
}

/// The per-address failure buckets and the ledger budget for failure records.
#[derive(Debug)]
pub struct Abuse {
    buckets: Mutex<HashMap<Key, Bucket>>,
    /// The bucket every new address shares while the table is full.
    shared: Mutex<Bucket>,
    budget: Mutex<Budget>,
}

impl Default for Abuse {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            buckets: Mutex::new(HashMap::new()),
            shared: Mutex::new(Bucket::full(now)),
            budget: Mutex::new(Budget {
                window: now,
                written: 0,
                suppressed: 0,
            }),
        }
    }
}

impl Abuse {
    /// Whether `ip` may try (it has failures left); call before any hashing.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<(), Throttled> {
        self.with_bucket(ip, |b, now| {
            b.refill(now);
            if b.tokens >= 1.0 {
                return Ok(());
            }
            let rate = f64::from(PER_ADDRESS_PER_MINUTE) / 60.0;
            let wait = ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64;
            let record = b
                .reported
                .is_none_or(|at| now.saturating_duration_since(at).as_secs() >= 60);
            if record {
                b.reported = Some(now);
            }
            Err(Throttled {
                retry_after_secs: wait,
                record,
            })
        })
    }

    /// Count one failure against `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        self.with_bucket(ip, |b, now| {
            b.refill(now);
            b.tokens = (b.tokens - 1.0).max(0.0);
        });
    }

    /// Whether a failure record may be written now: `Some(suppressed)` (failures not written
    /// since the last record that got in, to be carried by this one), or `None` (counted).
    pub fn may_record(&self) -> Option<u64> {
        let now = Instant::now();
        // A poisoned budget: write the record (never lose it for a lock).
        let Ok(mut b) = self.budget.lock() else {
            return Some(0);
        };
        if now.saturating_duration_since(b.window).as_secs() >= 60 {
            b.window = now;
            b.written = 0;
        }
        if b.written < RECORDS_PER_MINUTE {
            b.written += 1;
            Some(std::mem::take(&mut b.suppressed))
        } else {
            b.suppressed = b.suppressed.saturating_add(1);
            None
        }
    }

    /// Number of addresses tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map_or(0, |m| m.len())
    }

    fn with_bucket<T>(&self, ip: Option<IpAddr>, f: impl FnOnce(&mut Bucket, Instant) -> T) -> T {
        let now = Instant::now();
        let key = Key::of(ip);
        // A poisoned table: everyone shares the one bucket (still bounded, never unlimited).
        let Ok(mut map) = self.buckets.lock() else {
            return self.shared_bucket(now, f);
        };
        if !map.contains_key(&key) && map.len() >= MAX_ADDRESSES {
            // Only buckets that refilled are dropped: forgetting them changes nothing.
            map.retain(|_, b| {
                let mut b = *b;
                b.refill(now);
                !b.is_full()
            });
            if map.len() >= MAX_ADDRESSES {
                drop(map);
                return self.shared_bucket(now, f);
            }
        }
        let bucket = map.entry(key).or_insert_with(|| Bucket::full(now));
        f(bucket, now)
    }

    fn shared_bucket<T>(&self, now: Instant, f: impl FnOnce(&mut Bucket, Instant) -> T) -> T {
        match self.shared.lock() {
            Ok(mut b) => f(&mut b, now),
            Err(poisoned) => f(&mut poisoned.into_inner(), now),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_is_throttled_after_its_burst_and_its_refusal_is_recorded_once() {
        let a = Abuse::default();
        for _ in 0..PER_ADDRESS_BURST {
            assert!(a.admit(ip("192.0.2.1")).is_ok());
            a.failed(ip("192.0.2.1"));
        }
        let first = a.admit(ip("192.0.2.1")).unwrap_err();
        assert!(first.record && first.retry_after_secs >= 1);
        let again = a.admit(ip("192.0.2.1")).unwrap_err();
        assert!(!again.record, "one record per minute, not per request");
        // Another address is not affected; an IPv6 /64 is one address.
        assert!(a.admit(ip("192.0.2.2")).is_ok());
        for i in 0..PER_ADDRESS_BURST {
            a.failed(ip(&format!("2001:db8::{i:x}")));
        }
        assert!(a.admit(ip("2001:db8::ffff")).is_err());
        assert!(a.admit(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn a_flood_from_many_addresses_cannot_push_a_throttled_address_out() {
        let a = Abuse::default();
        for _ in 0..PER_ADDRESS_BURST {
            a.failed(ip("198.51.100.7"));
        }
        for i in 0..(MAX_ADDRESSES as u32 + 1000) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            a.failed(Some(addr));
        }
        assert!(a.tracked() <= MAX_ADDRESSES);
        assert!(
            a.admit(ip("198.51.100.7")).is_err(),
            "still throttled after the flood"
        );
    }

    #[test]
    fn failure_records_past_the_budget_are_counted_and_carried_by_the_next() {
        let a = Abuse::default();
        for _ in 0..RECORDS_PER_MINUTE {
            assert_eq!(a.may_record(), Some(0));
        }
        assert_eq!(a.may_record(), None);
        assert_eq!(a.may_record(), None);
        // A new window: the next record carries the two not written.
        a.budget.lock().unwrap().window -= std::time::Duration::from_secs(61);
        assert_eq!(a.may_record(), Some(2));
    }
}
