//! Envelope encryption of secrets at rest: each secret has its own random data key; the
//! secret is sealed with the data key, and the data key with the master key, both with
//! XChaCha20-Poly1305 (192-bit random nonces, so random nonces never collide in practice).
//! Rotating the master key re-wraps data keys only. The secret's name is the associated
//! data, so a sealed value cannot be moved to another name.
//!
//! Pure: keys and nonces are passed in.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// A sealed secret as stored: `wrapped_key` and `ciphertext` are each `nonce || AEAD output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// Which master key wrapped the data key ([`key_id`]).
    pub master_id: String,
}

/// Opening failed: wrong master key, or the stored bytes were changed. Says nothing more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the sealed secret could not be opened (wrong master key, or the stored value was altered)"
)]
pub struct OpenError;

/// A short public id of a master key: first 16 hex digits of SHA-256("warden-master" || key).
pub fn key_id(master: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"warden-master");
    h.update(master);
    hex::encode(h.finalize()).chars().take(16).collect()
}

pub(crate) fn seal_with(key: &[u8; 32], nonce: [u8; 24], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut out = nonce.to_vec();
    // Encryption with a valid key and nonce cannot fail for in-memory buffers.
    if let Ok(ct) = cipher.encrypt(
        XNonce::from_slice(&nonce),
        Payload {
            msg: plaintext,
            aad,
        },
    ) {
        out.extend_from_slice(&ct);
    }
    out
}

pub(crate) fn open_with(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < 24 + 16 {
        return Err(OpenError);
    }
    let (nonce, ct) = sealed.split_at(24);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| OpenError)
}

fn key_aad(name: &str) -> Vec<u8> {
    [b"warden-data-key:".as_slice(), name.as_bytes()].concat()
}

/// Seal `plaintext` under `name` with a fresh `data_key` and two fresh nonces.
pub fn seal(
    master: &[u8; 32],
    name: &str,
    plaintext: &[u8],
    data_key: [u8; 32],
    nonces: [[u8; 24]; 2],
) -> Sealed {
    let [n1, n2] = nonces;
    Sealed {
        wrapped_key: seal_with(master, n1, &data_key, &key_aad(name)),
        ciphertext: seal_with(&data_key, n2, plaintext, name.as_bytes()),
        master_id: key_id(master),
    }
}

/// Open a sealed secret.
pub fn open(master: &[u8; 32], name: &str, sealed: &Sealed) -> Result<Vec<u8>, OpenError> {
    let dk = open_with(master, &sealed.wrapped_key, &key_aad(name))?;
    let dk: [u8; 32] = dk.try_into().map_err(|_| OpenError)?;
    open_with(&dk, &sealed.ciphertext, name.as_bytes())
}

/// Re-wrap a secret's data key under a new master key (the ciphertext is unchanged).
pub fn rewrap(
    old: &[u8; 32],
    new: &[u8; 32],
    name: &str,
    sealed: &Sealed,
    nonce: [u8; 24],
) -> Result<Sealed, OpenError> {
    let dk = open_with(old, &sealed.wrapped_key, &key_aad(name))?;
    Ok(Sealed {
        wrapped_key: seal_with(new, nonce, &dk, &key_aad(name)),
        ciphertext: sealed.ciphertext.clone(),
        master_id: key_id(new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rewrap() {
        let m1 = [1u8; 32];
        let m2 = [2u8; 32];
        let s = seal(&m1, "crm", b"s3cret", [3; 32], [[4; 24], [5; 24]]);
        assert!(!s.ciphertext.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(open(&m1, "crm", &s).unwrap(), b"s3cret");
        assert!(open(&m2, "crm", &s).is_err());
        assert!(open(&m1, "other", &s).is_err());
        let r = rewrap(&m1, &m2, "crm", &s, [6; 24]).unwrap();
        assert_eq!(open(&m2, "crm", &r).unwrap(), b"s3cret");
        assert!(open(&m1, "crm", &r).is_err());
        let mut bad = s.clone();
        if let Some(b) = bad.ciphertext.last_mut() {
            *b ^= 1;
        }
        assert!(open(&m1, "crm", &bad).is_err());
    }
}
