//! Password and client-secret checks with a bounded cost.
//!
//! `POST /v1/login` and `POST /oauth/token` answer anyone, and each check is an Argon2id hash
//! over 19 MiB. Letting every request allocate its own memory made a flood of wrong passwords
//! a memory exhaustion: the allocator keeps freed blocks of that size per thread, so resident
//! memory grew by about 19 MiB per concurrent check and was never returned (issue 15, item 1).
//!
//! Here a semaphore admits at most `concurrency` checks at once and each admitted check borrows
//! one of `concurrency` memory buffers that live as long as the gateway: the memory spent on
//! password checks is `concurrency` × the hash's memory, whatever the load. A request that
//! cannot get a permit within [`MAX_WAIT`] is refused as busy rather than queued without end.
//!
//! The argon2 crate's `PasswordVerifier` allocates per call; this code calls
//! `hash_password_into_with_memory` with a pooled buffer and compares in constant time
//! (`password_hash::Output`'s `==`), which is why it is written here.

use std::sync::Mutex;
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// A PHC string for a password nobody knows (hashed as `identity::hash_password` hashes, with
/// a random salt): verifying against it costs what a real check costs, so an unknown client or
/// user takes as long as a known one ([`PasswordChecks::verify`]). Kept here, not in
/// `identity.rs`, so this module imports nothing of the gateway (no import loop through
/// `state.rs`).
fn dummy_hash() -> &'static str {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    use rand::RngCore as _;
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let Ok(salt) = SaltString::encode_b64(&salt) else {
            return String::new();
        };
        Argon2::default()
            .hash_password(b"warden-dummy-password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// How long a check waits for a free slot before the request is refused as busy.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// The most memory a stored hash may ask for, in KiB (64 MiB; Warden writes 19 MiB hashes). A
/// stored hash asking for more is treated as not matching rather than allocated.
const MAX_MEMORY_KIB: usize = 64 * 1024;

/// Too many checks are running and waiting; the caller answers `503` and the client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are in progress; retry shortly")]
pub struct Busy;

/// The bounded password checker shared by every unauthenticated endpoint that checks a secret.
#[derive(Debug)]
pub struct PasswordChecks {
    permits: Semaphore,
    buffers: Mutex<Vec<Vec<Block>>>,
    concurrency: usize,
}

impl PasswordChecks {
    /// At most `concurrency` checks at once (at least 1), each with a pooled buffer.
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        let size = Params::DEFAULT_M_COST as usize;
        Self {
            permits: Semaphore::new(concurrency),
            buffers: Mutex::new(
                (0..concurrency)
                    .map(|_| vec![Block::default(); size])
                    .collect(),
            ),
            concurrency,
        }
    }

    /// One check per core of this machine, at most four.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores.min(4))
    }

    /// How many checks may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Check `secret` against an Argon2id PHC string; `None` checks against a dummy hash (so an
    /// unknown user or client costs what a known one costs) and is always `false`.
    pub async fn verify(&self, secret: String, phc: Option<String>) -> Result<bool, Busy> {
        let _permit = tokio::time::timeout(MAX_WAIT, self.permits.acquire())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        // A permit guarantees a buffer: there are as many buffers as permits.
        let mut buffer = self
            .buffers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .ok_or(Busy)?;
        let known = phc.is_some();
        let (ok, buffer) = tokio::task::spawn_blocking(move || {
            let phc = phc.as_deref().unwrap_or_else(|| dummy_hash());
            let ok = check(secret.as_bytes(), phc, &mut buffer);
            (ok, buffer)
        })
        .await
        .unwrap_or_else(|_| {
            (
                false,
                vec![Block::default(); Params::DEFAULT_M_COST as usize],
            )
        });
        self.buffers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(buffer);
        Ok(ok && known)
    }
}

/// Recompute the hash of `secret` with the PHC string's algorithm, version, parameters and
/// salt in `memory`, and compare it in constant time.
fn check(secret: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let needed = params.block_count();
    if needed > MAX_MEMORY_KIB {
        return false;
    }
    if memory.len() < needed {
        // A stored hash with more memory than the default: the pooled buffer grows once and
        // stays that size (still one buffer per permit).
        memory.resize(needed, Block::default());
    }
    let Some(blocks) = memory.get_mut(..needed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(secret, salt, &mut out, blocks)
        .is_err()
    {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pooled_checks_agree_with_the_hash_and_refuse_what_does_not_match() {
        let checks = PasswordChecks::new(2);
        let phc = crate::identity::hash_password("correct horse").expect("hash");
        assert_eq!(
            checks
                .verify("correct horse".into(), Some(phc.clone()))
                .await,
            Ok(true)
        );
        assert_eq!(
            checks.verify("wrong horse".into(), Some(phc.clone())).await,
            Ok(false)
        );
        assert_eq!(checks.verify("correct horse".into(), None).await, Ok(false));
        assert_eq!(
            checks
                .verify("x".into(), Some("not a phc string".into()))
                .await,
            Ok(false)
        );
        // A hash asking for more memory than allowed is refused, not allocated.
        let greedy = phc.replace("m=19456", "m=1048576");
        assert_eq!(
            checks.verify("correct horse".into(), Some(greedy)).await,
            Ok(false)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_exhaustion_concurrent_checks_share_a_fixed_pool_of_buffers() {
        // Issue 15, item 1: 40 concurrent wrong passwords used to hold 40 × 19 MiB. Now at most
        // `concurrency` checks run at once, each in one of `concurrency` pooled buffers.
        let checks = std::sync::Arc::new(PasswordChecks::new(2));
        let phc = crate::identity::hash_password("right").expect("hash");
        let mut tasks = Vec::new();
        for i in 0..40 {
            let checks = checks.clone();
            let phc = phc.clone();
            tasks.push(tokio::spawn(async move {
                let secret = if i % 10 == 0 { "right" } else { "wrong" };
                (i, checks.verify(secret.into(), Some(phc)).await)
            }));
        }
        let mut seen_in_use = 0usize;
        for task in tasks {
            let (i, result) = task.await.expect("task");
            assert_eq!(result, Ok(i % 10 == 0), "check {i}");
            let pooled = checks.buffers.lock().expect("lock").len();
            seen_in_use = seen_in_use.max(checks.concurrency() - pooled);
        }
        assert!(seen_in_use <= 2);
        let pooled = checks.buffers.lock().expect("lock");
        assert_eq!(pooled.len(), 2, "every buffer is back in the pool");
        assert!(pooled
            .iter()
            .all(|b| b.len() == Params::DEFAULT_M_COST as usize));
        assert_eq!(checks.permits.available_permits(), 2);
    }
}
