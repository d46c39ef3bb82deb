//! The ledger's hash chain: each record names its sequence number and the leaf hash of the
//! record before it (`prev_hash`; 64 zeros for the first).
//!
//! Records are canonical JSON (RFC 8785), so their top-level members close in the order
//! `prev_hash`, `seq`, `ts`: `{"event":…,"prev_hash":"<64 hex>","seq":<n>,"ts":"<time>"}`.
//! Reading that tail instead of parsing the whole record keeps verification at hashing speed.

use crate::encoding::hash_from_hex;
use crate::merkle::{leaf_hash, Hash};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where and why the chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first sequence number that does not verify.
    pub seq: u64,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ledger chain broken at record {}: {}",
            self.seq, self.reason
        )
    }
}

impl std::error::Error for ChainBreak {}

/// The fields verification needs.
#[derive(Debug, PartialEq, Eq)]
pub struct ChainFields<'a> {
    pub seq: u64,
    pub prev_hash: &'a str,
}

/// Read `seq` and `prev_hash` from a record in Warden's canonical layout. Anything else —
/// including valid JSON in another layout — is `None`, which the verifier reports as a break:
/// the writer only ever writes this layout, and the record's bytes are what its hash covers.
pub fn chain_fields(record: &[u8]) -> Option<ChainFields<'_>> {
    let text = std::str::from_utf8(record).ok()?;
    if !text.starts_with("{\"event\":{") || !text.ends_with("\"}") {
        return None;
    }
    let ts_at = text.rfind(",\"ts\":\"")?;
    let ts = text.get(ts_at + 7..text.len() - 2)?;
    if ts.contains(['"', '\\']) {
        return None;
    }
    let head = text.get(..ts_at)?;
    let seq_at = head.rfind(",\"seq\":")?;
    let seq_text = head.get(seq_at + 7..)?;
    if seq_text.is_empty()
        || !seq_text.bytes().all(|b| b.is_ascii_digit())
        || (seq_text.len() > 1 && seq_text.starts_with('0'))
    {
        return None;
    }
    let seq = seq_text.parse().ok()?;
    let head = head.get(..seq_at)?;
    let prev_at = head.len().checked_sub(79)?;
    let tail = head.get(prev_at..)?;
    let prev_hash = tail.strip_prefix(",\"prev_hash\":\"")?.strip_suffix('"')?;
    if prev_hash.len() != 64 {
        return None;
    }
    // What remains is `{"event":{…}`: the event object must close right before the tail.
    if !head.get(..prev_at)?.ends_with('}') {
        return None;
    }
    Some(ChainFields { seq, prev_hash })
}

/// Streams records through the chain check, in order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: u64,
    /// `None` when the chain starts mid-log and the record before is not at hand.
    prev_hash: Option<Hash>,
    count: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A chain starting at record 1.
    pub fn new() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: Some([0u8; 32]),
            count: 0,
        }
    }

    /// A chain starting at record `seq` whose predecessor's hash is not known (an export of
    /// a time range): the first record's link is taken as given; everything after is checked.
    pub fn starting_at(seq: u64) -> Self {
        Self {
            expected_seq: seq,
            prev_hash: if seq <= 1 { Some([0u8; 32]) } else { None },
            count: 0,
        }
    }

    /// Check one stored row: its `seq` column, its stored `hash` column and the record bytes.
    pub fn push(
        &mut self,
        row_seq: i64,
        row_hash: &str,
        record: &[u8],
    ) -> Result<Hash, ChainBreak> {
        let expected = self.expected_seq;
        if row_seq != expected as i64 {
            let reason = if row_seq > expected as i64 {
                format!("record {expected} is missing (the next stored record is {row_seq})")
            } else {
                format!("stored sequence number {row_seq} where {expected} was expected")
            };
            return Err(ChainBreak {
                seq: expected,
                reason,
            });
        }
        let computed = leaf_hash(record);
        if hash_from_hex(row_hash) != Some(computed) {
            return Err(ChainBreak {
                seq: expected,
                reason:
                    "the record's content does not match its stored hash (content or hash altered)"
                        .to_string(),
            });
        }
        self.link(record, computed)
    }

    /// Check one record whose leaf hash is known from elsewhere (a purged row keeps only its
    /// hash): only its position is checked, and the next record must link to the hash.
    pub fn push_hash_only(&mut self, row_seq: i64, row_hash: &str) -> Result<Hash, ChainBreak> {
        let expected = self.expected_seq;
        if row_seq != expected as i64 {
            return Err(ChainBreak {
                seq: expected,
                reason: format!("stored sequence number {row_seq} where {expected} was expected"),
            });
        }
        let Some(h) = hash_from_hex(row_hash) else {
            return Err(ChainBreak {
                seq: expected,
                reason: "the stored hash is not a lower-case hex SHA-256 (hash altered)".into(),
            });
        };
        self.prev_hash = Some(h);
        self.expected_seq += 1;
        self.count += 1;
        Ok(h)
    }

    /// Check one exported record (no stored hash column): its own `seq` must be the next one.
    pub fn push_record(&mut self, record: &[u8]) -> Result<Hash, ChainBreak> {
        let computed = leaf_hash(record);
        self.link(record, computed)
    }

    fn link(&mut self, record: &[u8], computed: Hash) -> Result<Hash, ChainBreak> {
        let expected = self.expected_seq;
        let Some(fields) = chain_fields(record) else {
            return Err(ChainBreak {
                seq: expected,
                reason: "the record is not in the ledger's canonical form (content altered)"
                    .to_string(),
            });
        };
        if fields.seq != expected {
            return Err(ChainBreak {
                seq: expected,
                reason: format!(
                    "the record says it is number {}, expected {expected}",
                    fields.seq
                ),
            });
        }
        if let Some(prev) = self.prev_hash {
            if hash_from_hex(fields.prev_hash) != Some(prev) {
                return Err(ChainBreak {
                    seq: expected,
                    reason: "the record does not link to the hash of the record before it (a record before it was altered, removed or inserted)"
                        .to_string(),
                });
            }
        }
        self.prev_hash = Some(computed);
        self.expected_seq += 1;
        self.count += 1;
        Ok(computed)
    }

    /// Records verified so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sequence number the next record must have.
    pub fn next_seq(&self) -> u64 {
        self.expected_seq
    }

    /// Hash (hex) of the last verified record: the chain head.
    pub fn head(&self) -> String {
        crate::encoding::hex_encode(&self.prev_hash.unwrap_or([0u8; 32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_fields_read_the_canonical_tail_only() {
        let h = "ab".repeat(32);
        let ok = format!(
            r#"{{"event":{{"kind":"x","prev_hash":"zz"}},"prev_hash":"{h}","seq":12,"ts":"2026-11-25T00:00:00.000Z"}}"#
        );
        assert_eq!(
            chain_fields(ok.as_bytes()),
            Some(ChainFields {
                seq: 12,
                prev_hash: &h
            })
        );
        for bad in [
            ok.replace("\"seq\":12", "\"seq\":012"),
            ok.replace("\"seq\":12", "\"seq\":-1"),
            ok.replace("{\"event\":", "{ \"event\":"),
            ok.replace(&h, &h[..62]),
            format!("{ok} "),
            ok.replace(",\"ts\"", ",\"tz\""),
        ] {
            assert_eq!(chain_fields(bad.as_bytes()), None, "{bad}");
        }
    }

    fn record(seq: u64, prev: &str) -> String {
        format!(r#"{{"event":{{"kind":"x"}},"prev_hash":"{prev}","seq":{seq},"ts":"t"}}"#)
    }

    #[test]
    fn exported_records_link_and_a_gap_breaks() {
        let r1 = record(1, GENESIS_HASH);
        let h1 = crate::encoding::hex_encode(&leaf_hash(r1.as_bytes()));
        let r2 = record(2, &h1);
        let mut v = ChainVerifier::new();
        v.push_record(r1.as_bytes()).unwrap();
        v.push_record(r2.as_bytes()).unwrap();
        assert_eq!(v.count(), 2);
        let mut gap = ChainVerifier::new();
        gap.push_record(r1.as_bytes()).unwrap();
        assert_eq!(
            gap.push_record(record(3, &h1).as_bytes()).unwrap_err().seq,
            2
        );
        let mut mid = ChainVerifier::starting_at(2);
        mid.push_record(r2.as_bytes()).unwrap();
    }
}
