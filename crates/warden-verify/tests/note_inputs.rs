//! What the `signed_note` fuzz target checks, over every single-byte change of a real signed
//! checkpoint: nothing panics, whatever parses re-encodes to its text, and no changed note
//! opens with the key.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use warden_verify::{Checkpoint, Note, NoteSigner, NoteVerifier, RangeProof};

#[test]
fn every_single_byte_change_of_a_signed_checkpoint_is_refused() {
    let signer = NoteSigner::from_seed("example.com/warden", &[4u8; 32]).unwrap();
    let key = signer.verifier();
    let cp = Checkpoint {
        origin: "example.com/warden".into(),
        size: 1234,
        root: [0xa5; 32],
        extensions: vec!["ext line".into()],
    };
    let note = cp.sign(&signer).unwrap();
    assert_eq!(Checkpoint::open(&note, &key).unwrap(), cp);
    let bytes = note.as_bytes();
    let mut tried = 0;
    for i in 0..bytes.len() {
        for b in [
            b'\n',
            b' ',
            b'0',
            b'A',
            b'a',
            b'+',
            b'/',
            b'=',
            0x00,
            bytes[i] ^ 1,
        ] {
            if b == bytes[i] {
                continue;
            }
            let mut changed = bytes.to_vec();
            changed[i] = b;
            let Ok(text) = String::from_utf8(changed) else {
                continue;
            };
            tried += 1;
            if let Ok(n) = Note::parse(&text) {
                let _ = n.verified_by(&key);
                if let Ok(c) = Checkpoint::parse_body(&n.text) {
                    assert_eq!(c.body(), n.text);
                }
            }
            assert!(
                Checkpoint::open(&text, &key).is_err(),
                "byte {i} changed to {b:#x} still opens: {text:?}"
            );
            let _ = NoteVerifier::parse(&text);
            let _ = NoteSigner::parse(&text);
            let _ = RangeProof::from_json(&text);
        }
    }
    assert!(tried > 1000, "{tried}");
}
