//! Signed notes and tlog checkpoints as a witness or auditor receives them: parsing and
//! verification must never panic, and whatever parses must re-encode to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_verify::{Checkpoint, Note, NoteSigner, NoteVerifier};

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = NoteSigner::from_seed("fuzz.example/log", &[1u8; 32])
        .map(|s| s.verifier())
        .ok();
    if let Ok(note) = Note::parse(text) {
        if let Some(k) = &key {
            let _ = note.verified_by(k);
        }
        if let Ok(cp) = Checkpoint::parse_body(&note.text) {
            assert_eq!(cp.body(), note.text, "a parsed checkpoint re-encodes to its text");
        }
    }
    if let Some(k) = &key {
        let _ = Checkpoint::open(text, k);
    }
    let _ = NoteVerifier::parse(text);
    let _ = NoteSigner::parse(text);
    let _ = warden_verify::RangeProof::from_json(text);
});
