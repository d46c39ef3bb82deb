//! C2SP signed notes with Ed25519 keys, and the C2SP tlog-checkpoint body they carry.
//!
//! signed-note (c2sp.org/signed-note): a note is UTF-8 text ending in a newline, a blank
//! line, then one line per signature: `— <key name> <base64(4-byte key id || signature)>`.
//! The key id is the first four bytes of `SHA-256(key name || 0x0A || 0x01 || public key)`
//! (`0x01` is the Ed25519 signature type) and the signature covers the text (up to and
//! including its final newline). A verifier key is written
//! `<name>+<hex key id>+<base64(0x01 || public key)>`; a signer key (as Go's `note` package
//! writes it) `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
//!
//! tlog-checkpoint (c2sp.org/tlog-checkpoint): the text is the origin (the log's name), the
//! tree size in decimal, the root hash in base64, each on its own line, then optional
//! extension lines.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::encoding::{base64_decode, base64_encode, hex_decode, hex_encode};
use crate::merkle::Hash;

/// The Ed25519 signature type byte.
const ALG_ED25519: u8 = 0x01;
/// Largest note accepted.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// Most signature lines accepted (as Go's `note` package).
const MAX_SIGNATURES: usize = 100;

/// Why a key, note or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    /// A key string is malformed.
    BadKey(String),
    /// The note text is malformed.
    Malformed(String),
    /// No signature by the given key verifies.
    Unverified,
    /// The note verified but its text is not a checkpoint.
    BadCheckpoint(String),
}

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadKey(why) => write!(f, "malformed key: {why}"),
            Self::Malformed(why) => write!(f, "malformed signed note: {why}"),
            Self::Unverified => write!(f, "no valid signature by the given key"),
            Self::BadCheckpoint(why) => write!(f, "malformed checkpoint: {why}"),
        }
    }
}

impl std::error::Error for NoteError {}

/// A key name is non-empty and holds no white space and no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name || "\n" || 0x01 || public key)[..4]`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let d: [u8; 32] = h.finalize().into();
    let [a, b, c, e, ..] = d;
    [a, b, c, e]
}

/// A public key that checks note signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parse `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let vkey = vkey.trim_end_matches(['\n', '\r']);
        let bad = |why: &str| NoteError::BadKey(why.to_string());
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<key id>+<key>"));
        };
        if !is_valid_key_name(name) {
            return Err(bad("the key name is empty or holds white space or `+`"));
        }
        let id: [u8; 4] = hex_decode(id_hex)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("the key id is not 8 lower-case hex digits"))?;
        let raw = base64_decode(key_b64).ok_or_else(|| bad("the key is not base64"))?;
        let Some((&alg, public)) = raw.split_first() else {
            return Err(bad("the key is empty"));
        };
        if alg != ALG_ED25519 {
            return Err(bad("only Ed25519 keys (type 0x01) are supported"));
        }
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("an Ed25519 public key is 32 bytes"))?;
        if key_id(name, &public) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 public key"))?;
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    /// Check a detached Ed25519 signature (64 bytes) over `message` made with
    /// [`NoteSigner::sign_detached`] (strict verification, as for notes).
    pub fn verify_detached(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifies(message, signature)
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex_encode(&self.id),
            base64_encode(&raw)
        )
    }

    fn verifies(&self, text: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(text, &sig).is_ok()
    }
}

/// A private key that signs notes.
pub struct NoteSigner {
    name: String,
    id: [u8; 4],
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer from a name and a 32-byte Ed25519 seed (randomness comes from the caller).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::BadKey(
                "the key name is empty or holds white space or `+`".into(),
            ));
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Parse `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
    pub fn parse(skey: &str) -> Result<Self, NoteError> {
        let skey = skey.trim_end_matches(['\n', '\r']);
        let bad = |why: &str| NoteError::BadKey(why.to_string());
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("a signer key starts with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected PRIVATE+KEY+<name>+<key id>+<key>"));
        };
        let raw = base64_decode(key_b64).ok_or_else(|| bad("the key is not base64"))?;
        let Some((&alg, seed)) = raw.split_first() else {
            return Err(bad("the key is empty"));
        };
        if alg != ALG_ED25519 {
            return Err(bad("only Ed25519 keys (type 0x01) are supported"));
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("an Ed25519 seed is 32 bytes"))?;
        let signer = Self::from_seed(name, &seed)?;
        if hex_encode(&signer.id) != id_hex {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(signer)
    }

    /// The signer key string (secret: write it only to a private file).
    pub fn to_skey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex_encode(&self.id),
            base64_encode(&raw)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The key id (first four bytes of `SHA-256(name || 0x0A || 0x01 || public key)`).
    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    /// A detached Ed25519 signature over `message`, for records signed with the log's key
    /// besides its checkpoints (approval votes). The caller starts the message with a context
    /// string of its own and must never let it end in a newline: every note text does, so a
    /// detached signature can never pass as a note signature or the other way round.
    pub fn sign_detached(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Sign a note text (which must end in a newline) and return the whole note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            base64_encode(&blob)
        ))
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the text must end in a newline".into(),
        ));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed(
            "control characters other than newline".into(),
        ));
    }
    Ok(())
}

impl Note {
    /// Parse a signed note without checking any signature.
    pub fn parse(msg: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Malformed(why.to_string());
        if msg.len() > MAX_NOTE_BYTES {
            return Err(bad("larger than 1 MiB"));
        }
        if msg.chars().any(|c| c < ' ' && c != '\n') {
            return Err(bad("control characters other than newline"));
        }
        let split = msg
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = msg.get(..=split).ok_or_else(|| bad("truncated"))?;
        let sigs = msg.get(split + 2..).ok_or_else(|| bad("truncated"))?;
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(bad("the signatures must end in a newline"));
        };
        if sigs.is_empty() {
            return Err(bad("no signatures"));
        }
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| bad("a signature line starts with an em dash and a space"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("a signature line is `— <name> <signature>`"))?;
            if !is_valid_key_name(name) {
                return Err(bad("a signature names an invalid key"));
            }
            let blob = base64_decode(b64).ok_or_else(|| bad("a signature is not base64"))?;
            if blob.len() < 5 {
                return Err(bad("a signature is too short"));
            }
            let (id, sig) = blob.split_at_checked(4).ok_or_else(|| bad("truncated"))?;
            let key_id: [u8; 4] = id.try_into().map_err(|_| bad("truncated"))?;
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id,
                signature: sig.to_vec(),
            });
        }
        Ok(Self {
            text: text.to_string(),
            signatures,
        })
    }

    /// Whether a signature by `key` (same name and key id) verifies over the text.
    pub fn verified_by(&self, key: &NoteVerifier) -> bool {
        self.signatures.iter().any(|s| {
            s.name == key.name
                && s.key_id == key.id
                && key.verifies(self.text.as_bytes(), &s.signature)
        })
    }
}

/// A tlog checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Further lines of the body, as given.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            base64_encode(&self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parse a checkpoint body (the text of a note).
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::BadCheckpoint(why.to_string());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the body must end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let size_text = lines.next().ok_or_else(|| bad("no tree size line"))?;
        if size_text.is_empty()
            || !size_text.bytes().all(|b| b.is_ascii_digit())
            || (size_text.len() > 1 && size_text.starts_with('0'))
        {
            return Err(bad("the tree size is not a decimal number"));
        }
        let size: u64 = size_text
            .parse()
            .map_err(|_| bad("the tree size is too large"))?;
        let root_text = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root: Hash = base64_decode(root_text)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// Sign as a note.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, NoteError> {
        signer.sign(&self.body())
    }

    /// Parse a signed checkpoint and require a valid signature by `key`.
    pub fn open(note: &str, key: &NoteVerifier) -> Result<Self, NoteError> {
        let n = Note::parse(note)?;
        if !n.verified_by(key) {
            return Err(NoteError::Unverified);
        }
        Self::parse_body(&n.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("example.com/log", &[7u8; 32]).unwrap()
    }

    #[test]
    fn keys_round_trip_and_ids_follow_the_spec() {
        let s = signer();
        let v = s.verifier();
        let vkey = v.to_vkey();
        assert_eq!(NoteVerifier::parse(&vkey).unwrap(), v);
        let again = NoteSigner::parse(&s.to_skey()).unwrap();
        assert_eq!(again.verifier(), v);
        // Key id computed independently of `key_id`.
        let mut h = Sha256::new();
        h.update(b"example.com/log\n\x01");
        h.update(v.key.as_bytes());
        assert_eq!(&h.finalize()[..4], &v.key_id());
        assert!(vkey.starts_with(&format!("example.com/log+{}+A", hex_encode(&v.key_id()))));
        // A different name with the same key has another id, so the vkey does not parse.
        let forged = vkey.replacen("example.com/log", "example.com/other", 1);
        assert!(NoteVerifier::parse(&forged).is_err());
        assert!(format!("{s:?}").find("PRIVATE").is_none());
    }

    #[test]
    fn go_note_package_verifier_key_parses() {
        // The example verifier key from the documentation of golang.org/x/mod/sumdb/note.
        let v = NoteVerifier::parse(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        )
        .unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        // ... and the note it signed there verifies.
        let msg = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let n = Note::parse(msg).unwrap();
        assert!(n.verified_by(&v));
        let changed = msg.replace("cryptography", "cryptograph");
        assert!(!Note::parse(&changed).unwrap().verified_by(&v));
    }

    #[test]
    fn checkpoints_sign_open_and_refuse_changes() {
        let s = signer();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 42,
            root: [9u8; 32],
            extensions: vec![],
        };
        let note = cp.sign(&s).unwrap();
        assert!(note.starts_with("example.com/log\n42\nCQkJ"));
        assert_eq!(Checkpoint::open(&note, &s.verifier()).unwrap(), cp);
        let other = NoteSigner::from_seed("example.com/log", &[8u8; 32]).unwrap();
        assert_eq!(
            Checkpoint::open(&note, &other.verifier()),
            Err(NoteError::Unverified)
        );
        assert!(Checkpoint::open(&note.replacen("42", "41", 1), &s.verifier()).is_err());
        for bad in [
            "origin\n042\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "origin\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "origin\n1\nCQkJ\n",
            "\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "origin\n1\n",
        ] {
            assert!(Checkpoint::parse_body(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_notes_are_refused() {
        let note = Checkpoint {
            origin: "o".into(),
            size: 1,
            root: [0u8; 32],
            extensions: vec![],
        }
        .sign(&signer())
        .unwrap();
        for bad in [
            note.trim_end().to_string(),
            note.replace("\u{2014} ", "- "),
            note.replace("\n\n", "\n"),
            note.replacen('o', "o\r", 1),
            format!("{note}\u{2014} x\n"),
        ] {
            assert!(Note::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
