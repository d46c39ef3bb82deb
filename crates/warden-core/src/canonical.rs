//! Canonical JSON (RFC 8785, JSON Canonicalization Scheme): the one serialisation of every
//! value Warden hashes or signs — ledger records, vote statements, argument hashes, tool
//! definitions.

use serde::Serialize;

/// The RFC 8785 canonical JSON of `value`: members sorted by their UTF-16 code units, no
/// whitespace, numbers in their shortest round-trip form.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_jcs::to_string(value)
}
