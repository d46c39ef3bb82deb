//! Payload sealing: the data lifecycle of ledger records.
//!
//! A record keeps in the clear what an auditor needs to know happened — who, which tool, when,
//! the decision and its reasons, the hashes that chain it. What was *in* the call — the
//! arguments, the output, the user's request, the excerpts the injection detector quoted — is
//! redacted first and then sealed (XChaCha20-Poly1305) before the record is serialised and
//! hashed. The ledger's hashes cover the ciphertext, so destroying a key later changes no byte
//! that was hashed: the chain and every signed checkpoint still verify.
//!
//! Two keys can stand behind one payload, and destroying either makes it unreadable:
//! - a **period key** per (day, agent, data classes): retention destroys the period keys whose
//!   day is past the retention of that agent and those classes (crypto-shredding);
//! - a **subject key** per data subject (a customer, an employee) named by the scope card's
//!   `subject_args`: `warden data erase --subject` destroys it.
//!
//! The payload key is HKDF-SHA256 over both. Keys are stored wrapped by the master key, so
//! rotating the master key re-wraps keys and rewrites no record.
//!
//! A sealed value is the string `wdn1:<period key id>[+<subject key id>]:<base64url(nonce ||
//! ciphertext)>`, with the field name and key ids as associated data: a sealed value cannot be
//! moved to another field or claimed by another key.
//!
//! Pure: keys and nonces are passed in.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::envelope::{open_with, seal_with, OpenError};
use crate::ledger::LedgerEvent;

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "wdn1:";

/// A sealed value, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedRef<'a> {
    pub period: &'a str,
    pub subject: Option<&'a str>,
    blob: &'a str,
}

impl<'a> SealedRef<'a> {
    /// Parse `wdn1:<period>[+<subject>]:<blob>`; anything else is `None` (a value stored
    /// before sealing was configured, or not a sealed value at all).
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(SEALED_PREFIX)?;
        let (ids, blob) = rest.split_once(':')?;
        let (period, subject) = match ids.split_once('+') {
            Some((p, s)) => (p, Some(s)),
            None => (ids, None),
        };
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !id_ok(period) || !subject.is_none_or(id_ok) || blob.is_empty() {
            return None;
        }
        Some(Self {
            period,
            subject,
            blob,
        })
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The key that seals one payload: HKDF-SHA256 (RFC 5869, one output block) with the period
/// key and, when there is one, the subject key as input keying material, the salt
/// `warden-payload-v1`, and `<period id>+<subject id>` as info. Destroying either input key
/// makes the derived key unrecoverable.
pub fn payload_key(
    period_key: &[u8; 32],
    subject_key: Option<&[u8; 32]>,
    period_id: &str,
    subject_id: Option<&str>,
) -> [u8; 32] {
    let ikm: Vec<u8> = match subject_key {
        Some(s) => [period_key.as_slice(), s.as_slice()].concat(),
        None => period_key.to_vec(),
    };
    hkdf_sha256(
        PAYLOAD_KEY_SALT,
        &ikm,
        &[
            period_id.as_bytes(),
            b"+",
            subject_id.unwrap_or("").as_bytes(),
        ],
    )
}

/// The HKDF salt of payload keys (RFC 5869 §2.2), fixed since the first sealed value.
const PAYLOAD_KEY_SALT: &[u8] = b"warden-payload-v1";

/// HKDF-SHA256 (RFC 5869): extract with `salt` (§2.2), expand with the concatenated `info`
/// parts (§2.3) to one 32-byte output block.
fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    // RFC 5869 §2.3 allows up to 255 blocks; one block cannot exceed it.
    if Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, &mut okm)
        .is_err()
    {
        unreachable!("32 bytes is one HKDF-SHA256 block");
    }
    okm
}

fn aad(field: &str, period_id: &str, subject_id: Option<&str>) -> Vec<u8> {
    format!("{field}|{period_id}|{}", subject_id.unwrap_or("")).into_bytes()
}

/// Seal `plaintext` (the canonical JSON of the field's value) for `field`.
pub fn seal_payload(
    key: &[u8; 32],
    period_id: &str,
    subject_id: Option<&str>,
    field: &str,
    plaintext: &[u8],
    nonce: [u8; 24],
) -> String {
    let sealed = seal_with(key, nonce, plaintext, &aad(field, period_id, subject_id));
    let blob = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed);
    match subject_id {
        Some(s) => format!("{SEALED_PREFIX}{period_id}+{s}:{blob}"),
        None => format!("{SEALED_PREFIX}{period_id}:{blob}"),
    }
}

/// Open a sealed value of `field` with the key [`payload_key`] derived for its key ids.
pub fn open_payload(
    key: &[u8; 32],
    sealed: &SealedRef<'_>,
    field: &str,
) -> Result<Vec<u8>, OpenError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sealed.blob)
        .map_err(|_| OpenError)?;
    open_with(key, &bytes, &aad(field, sealed.period, sealed.subject))
}

/// Wrap a stored key under the master key; the key id is associated data.
pub fn wrap_key(master: &[u8; 32], id: &str, key: &[u8; 32], nonce: [u8; 24]) -> Vec<u8> {
    seal_with(
        master,
        nonce,
        key,
        format!("warden-vault-key:{id}").as_bytes(),
    )
}

/// Unwrap a stored key.
pub fn unwrap_key(master: &[u8; 32], id: &str, wrapped: &[u8]) -> Result<[u8; 32], OpenError> {
    let k = open_with(master, wrapped, format!("warden-vault-key:{id}").as_bytes())?;
    k.try_into().map_err(|_| OpenError)
}

/// A data subject as Warden keys it: trimmed and lower-cased (so `Alice@Example.com` and
/// `alice@example.com` are one subject; over-grouping only ever erases more). `None` for an
/// empty or over-long (> 256 bytes) value.
pub fn normalize_subject(raw: &str) -> Option<String> {
    let s = raw.trim().to_lowercase();
    (!s.is_empty() && s.len() <= 256).then_some(s)
}

/// The pseudonymous reference of a subject stored in records and key rows: the first 16 hex
/// digits of HMAC-SHA256(index key, subject). The subject itself is never stored.
pub fn subject_ref(index_key: &[u8; 32], subject: &str) -> String {
    hex::encode(&hmac(index_key, &[b"subject:", subject.as_bytes()])[..8])
}

/// Id of the subject key of generation `generation` (a new one is made when a subject that
/// was erased appears again).
pub fn subject_key_id(subject_ref: &str, generation: u32) -> String {
    format!("s-{subject_ref}-{generation}")
}

/// Id of the period key for records of `agent` with `classes` on `day` (`YYYY-MM-DD`).
pub fn period_key_id(day: &str, agent: &str, classes: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(agent.as_bytes());
    for c in classes {
        h.update([0u8]);
        h.update(c.as_bytes());
    }
    let digest = hex::encode(h.finalize());
    let compact: String = day.chars().filter(char::is_ascii_digit).collect();
    format!("p-{compact}-{}", &digest[..12])
}

pub use crate::config::{parse_retention, RetentionError};

/// What the project says about one agent's payloads.
#[derive(Debug, Clone, Default)]
pub struct AgentPlan {
    /// The card's `retention` (per customer contract); `None` = the project default.
    pub retention: Option<Option<u32>>,
    /// Argument names (dotted paths) whose value names the data subject; first present wins.
    pub subject_args: Vec<String>,
    /// Tool (by name and by `server/name`) → the data classes its calls carry.
    pub tool_classes: HashMap<String, Vec<String>>,
}

/// Retention and subjects for every agent, from `warden.toml [retention]` and the scope cards.
#[derive(Debug, Clone, Default)]
pub struct PayloadPlan {
    /// `[retention] default`; `None` keeps payloads until erased.
    pub default_days: Option<u32>,
    /// `[retention.classes]`: a class's retention caps that of every record carrying it.
    pub class_days: BTreeMap<String, u32>,
    pub agents: HashMap<String, AgentPlan>,
}

impl PayloadPlan {
    /// From `warden.toml [retention]` and the scope cards (both already validated, so an
    /// unparsable period cannot occur here; it would be treated as `forever`).
    pub fn from_project<'a>(
        config: &crate::config::WardenConfig,
        cards: impl IntoIterator<Item = &'a crate::ScopeCard>,
    ) -> Self {
        let r = &config.retention;
        let default_days = parse_retention(r.default.get_ref()).ok().flatten();
        let class_days = r
            .classes
            .iter()
            .filter_map(|(c, v)| Some((c.clone(), parse_retention(v.get_ref()).ok().flatten()?)))
            .collect();
        let agents = cards
            .into_iter()
            .map(|card| {
                let mut tool_classes = HashMap::new();
                for t in &card.tools {
                    if !t.data_classes.is_empty() {
                        tool_classes.insert(t.name.clone(), t.data_classes.clone());
                        tool_classes.insert(t.qualified().to_string(), t.data_classes.clone());
                    }
                }
                let plan = AgentPlan {
                    retention: card.retention,
                    subject_args: card.subject_args.clone(),
                    tool_classes,
                };
                (card.id.clone(), plan)
            })
            .collect();
        Self {
            default_days,
            class_days,
            agents,
        }
    }

    /// The data classes of a call of `tools` (name, `server/name`) by `agent`, sorted.
    pub fn classes(&self, agent: &str, tools: &[Option<&str>]) -> Vec<String> {
        let Some(a) = self.agents.get(agent) else {
            return Vec::new();
        };
        let mut out: Vec<String> = tools
            .iter()
            .flatten()
            .find_map(|t| a.tool_classes.get(*t))
            .cloned()
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    /// Days the payloads of `agent` carrying `classes` are kept (`None`: until erased): the
    /// agent's own retention or the default, capped by each class's.
    pub fn retention_days(&self, agent: &str, classes: &[String]) -> Option<u32> {
        let base = self
            .agents
            .get(agent)
            .and_then(|a| a.retention)
            .unwrap_or(self.default_days);
        classes
            .iter()
            .filter_map(|c| self.class_days.get(c).copied())
            .fold(base, |acc, d| Some(acc.map_or(d, |a| a.min(d))))
    }

    /// The data subject of a decision by `agent` with `arguments`, from the card's
    /// `subject_args` (normalised; see [`normalize_subject`]).
    pub fn subject_of(&self, agent: &str, arguments: &Value) -> Option<String> {
        let a = self.agents.get(agent)?;
        a.subject_args.iter().find_map(|path| {
            let mut v = arguments;
            for part in path.split('.') {
                v = v.get(part)?;
            }
            match v {
                Value::String(s) => normalize_subject(s),
                Value::Number(n) => normalize_subject(&n.to_string()),
                _ => None,
            }
        })
    }
}

/// The agent and tool names a sealable event is about: (agent, tool, `server/name`).
pub fn event_scope(event: &LedgerEvent) -> Option<(&str, &str, Option<&str>)> {
    match event {
        LedgerEvent::Decision(d) => Some((&d.agent, &d.tool, d.qualified_tool.as_deref())),
        LedgerEvent::Outcome(o) => Some((&o.agent, &o.tool, None)),
        LedgerEvent::InjectionDetected(i) => Some((&i.agent, &i.tool, None)),
        LedgerEvent::SnapshotRead(r) => Some((&r.agent, &r.tool, None)),
        _ => None,
    }
}

/// Replace each payload field of `event` by what `seal(field, canonical JSON)` returns. Other
/// events have no payload and are left alone. Null values stay null (nothing to hide).
pub fn seal_event(event: &mut LedgerEvent, mut seal: impl FnMut(&str, &[u8]) -> String) {
    let mut value = |field: &str, v: &mut Value| {
        if !v.is_null() {
            let plain = crate::canonical::canonical_json(&*v).unwrap_or_default();
            *v = Value::String(seal(field, plain.as_bytes()));
        }
    };
    match event {
        LedgerEvent::Decision(d) => {
            value("arguments", &mut d.arguments);
            if let Some(u) = d.user_request.as_mut() {
                *u = seal("user_request", u.as_bytes());
            }
            // Reasons quote argument values (`argument `to` = …`); the verdict, tier and
            // policy ids stay in the clear, so why a call was allowed or refused is still
            // known at the level of policies once the payload is gone.
            let x = &mut d.decision;
            if !x.reasons.is_empty() {
                let all = crate::canonical::canonical_json(&x.reasons).unwrap_or_default();
                x.reasons = vec![seal("reasons", all.as_bytes())];
            }
            for v in &mut x.violations {
                v.message = seal("violation", v.message.as_bytes());
            }
            for p in &mut x.provenance {
                p.value = seal("provenance", p.value.as_bytes());
            }
            for e in &mut x.egress_off_list {
                *e = seal("egress", e.as_bytes());
            }
        }
        LedgerEvent::Outcome(o) => value("output", &mut o.output),
        LedgerEvent::InjectionDetected(i) => {
            for f in &mut i.findings {
                f.excerpt = seal("excerpt", f.excerpt.as_bytes());
            }
        }
        LedgerEvent::SnapshotRead(r) => {
            value("arguments", &mut r.arguments);
            value("before_state", &mut r.before_state);
            if let Some(e) = r.error.as_mut() {
                *e = seal("error", e.as_bytes());
            }
        }
        _ => {}
    }
}

/// Why a sealed payload cannot be read any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Its period key was destroyed by retention.
    Purged,
    /// Its subject key was destroyed by an erasure.
    Erased,
    /// The key is missing or the value does not open (altered, or a wrong master key).
    Unavailable,
}

impl Unreadable {
    /// What a reader sees in place of the payload.
    pub fn marker(&self) -> &'static str {
        match self {
            Self::Purged => "[purged: past retention]",
            Self::Erased => "[erased: data subject]",
            Self::Unavailable => "[sealed: key unavailable]",
        }
    }
}

/// Open each sealed payload field of `event` with `open(field, sealed)`; a field that cannot
/// be opened shows [`Unreadable::marker`]. Values that are not sealed are left alone.
pub fn open_event(
    event: &mut LedgerEvent,
    mut open: impl FnMut(&str, &SealedRef<'_>) -> Result<Vec<u8>, Unreadable>,
) {
    type Opener<'a> = dyn FnMut(&str, &SealedRef<'_>) -> Result<Vec<u8>, Unreadable> + 'a;
    fn text(open: &mut Opener<'_>, field: &str, s: &mut String) {
        if let Some(r) = SealedRef::parse(s) {
            *s = match open(field, &r) {
                Ok(bytes) => String::from_utf8(bytes)
                    .unwrap_or_else(|_| Unreadable::Unavailable.marker().to_string()),
                Err(why) => why.marker().to_string(),
            };
        }
    }
    fn value(open: &mut Opener<'_>, field: &str, v: &mut Value) {
        if let Value::String(s) = v {
            if let Some(r) = SealedRef::parse(s) {
                *v = match open(field, &r) {
                    Ok(bytes) => serde_json::from_slice(&bytes)
                        .unwrap_or_else(|_| Value::String(Unreadable::Unavailable.marker().into())),
                    Err(why) => Value::String(why.marker().into()),
                };
            }
        }
    }
    let open: &mut Opener<'_> = &mut open;
    match event {
        LedgerEvent::Decision(d) => {
            value(open, "arguments", &mut d.arguments);
            if let Some(u) = d.user_request.as_mut() {
                text(open, "user_request", u);
            }
            let x = &mut d.decision;
            if let [one] = x.reasons.as_slice() {
                if let Some(r) = SealedRef::parse(one) {
                    x.reasons = match open("reasons", &r) {
                        Ok(bytes) => serde_json::from_slice(&bytes)
                            .unwrap_or_else(|_| vec![Unreadable::Unavailable.marker().to_string()]),
                        Err(why) => vec![why.marker().to_string()],
                    };
                }
            }
            for v in &mut x.violations {
                text(open, "violation", &mut v.message);
            }
            for p in &mut x.provenance {
                text(open, "provenance", &mut p.value);
            }
            for e in &mut x.egress_off_list {
                text(open, "egress", e);
            }
        }
        LedgerEvent::Outcome(o) => value(open, "output", &mut o.output),
        LedgerEvent::InjectionDetected(i) => {
            for f in &mut i.findings {
                text(open, "excerpt", &mut f.excerpt);
            }
        }
        LedgerEvent::SnapshotRead(r) => {
            value(open, "arguments", &mut r.arguments);
            value(open, "before_state", &mut r.before_state);
            if let Some(e) = r.error.as_mut() {
                text(open, "error", e);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_keys_and_field() {
        let p = [1u8; 32];
        let s = [2u8; 32];
        let k = payload_key(&p, Some(&s), "p-20261126-aa", Some("s-0011-1"));
        let sealed = seal_payload(
            &k,
            "p-20261126-aa",
            Some("s-0011-1"),
            "output",
            b"{\"a\":1}",
            [9; 24],
        );
        assert!(sealed.starts_with("wdn1:p-20261126-aa+s-0011-1:"));
        let r = SealedRef::parse(&sealed).unwrap();
        assert_eq!(r.subject, Some("s-0011-1"));
        assert_eq!(open_payload(&k, &r, "output").unwrap(), b"{\"a\":1}");
        assert!(
            open_payload(&k, &r, "arguments").is_err(),
            "bound to its field"
        );
        let other = payload_key(&p, Some(&[3u8; 32]), "p-20261126-aa", Some("s-0011-1"));
        assert!(
            open_payload(&other, &r, "output").is_err(),
            "needs the subject key"
        );
        let no_subject = payload_key(&p, None, "p-20261126-aa", Some("s-0011-1"));
        assert!(open_payload(&no_subject, &r, "output").is_err());
    }

    /// The payload-key derivation, pinned to the bytes the hand-written HKDF-SHA256 produced
    /// before it was replaced by the `hkdf` crate: a different key would leave every payload
    /// sealed so far unreadable.
    #[test]
    fn payload_key_derivation_is_pinned() {
        let seq: [u8; 32] = std::array::from_fn(|i| i as u8);
        let rev: [u8; 32] = std::array::from_fn(|i| 255 - i as u8);
        /// Period key, subject key, period id, subject id, expected key (hex).
        type Case<'a> = (
            [u8; 32],
            Option<[u8; 32]>,
            &'a str,
            Option<&'a str>,
            &'a str,
        );
        let cases: [Case<'_>; 4] = [
            (
                [1; 32],
                Some([2; 32]),
                "p-20261126-aa",
                Some("s-0011-1"),
                "7ba09993f3b91872961656a7d4b09b4c7619f9fc5aa0bb74e55df87e100a6aff",
            ),
            (
                [1; 32],
                None,
                "p-20261126-aa",
                None,
                "dd65034a005f8d9ddc70fef2cf0c79971cd0d4e0e8bbaaf2142929b56c38a928",
            ),
            (
                [1; 32],
                None,
                "p-20261126-aa",
                Some("s-0011-1"),
                "6cd65dc7310b6118b670bc7d416ae752b55adfc3cd4c392e51319fc8c3c04742",
            ),
            (
                seq,
                Some(rev),
                "p-20250101-0123456789ab",
                Some("s-deadbeefdeadbeef-3"),
                "b6fb5a54decdba1fb374e42862266064c55e2a9fed10f5629cb910b140b7b7d7",
            ),
        ];
        for (period, subject, period_id, subject_id, expected) in cases {
            let key = payload_key(&period, subject.as_ref(), period_id, subject_id);
            assert_eq!(hex::encode(key), expected, "{period_id} {subject_id:?}");
        }
    }

    /// RFC 5869 Appendix A.1 (test case 1): the first 32 bytes of its OKM are the one block
    /// [`hkdf_sha256`] returns.
    #[test]
    fn hkdf_matches_rfc_5869_test_case_1() {
        let ikm = [0x0b_u8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        assert_eq!(
            hex::encode(hkdf_sha256(&salt, &ikm, &[&info[..4], &info[4..]])),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    /// A value sealed by an earlier version (before the `hkdf` crate) still opens.
    #[test]
    fn values_sealed_by_earlier_versions_still_open() {
        let sealed = "wdn1:p-20261126-aa+s-0011-1:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJiTV-jgpy06AS9YAhrj8j66z4Raogkv3Dvsqk1Hk1dmM";
        let r = SealedRef::parse(sealed).unwrap();
        let key = payload_key(&[1; 32], Some(&[2; 32]), r.period, r.subject);
        assert_eq!(
            open_payload(&key, &r, "output").unwrap(),
            b"{\"refund\":120.5}"
        );
    }

    #[test]
    fn parse_rejects_what_was_not_sealed() {
        for s in [
            "",
            "wdn1:",
            "wdn1:abc",
            "wdn1:ABC:xx",
            "wdn1:p-1+:xx",
            "hello",
            "wdn2:p:x",
        ] {
            assert!(SealedRef::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn retention_periods() {
        assert_eq!(parse_retention("7d"), Ok(Some(7)));
        assert_eq!(parse_retention("2w"), Ok(Some(14)));
        assert_eq!(parse_retention("1y"), Ok(Some(365)));
        assert_eq!(parse_retention("forever"), Ok(None));
        for bad in ["0d", "d", "7", "7m", "-1d", "1.5d", ""] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retention_is_capped_by_classes() {
        let mut plan = PayloadPlan {
            default_days: Some(90),
            ..Default::default()
        };
        plan.class_days.insert("customer_pii".into(), 30);
        plan.agents.insert(
            "a".into(),
            AgentPlan {
                retention: Some(Some(60)),
                subject_args: vec!["customer.email".into(), "customer_id".into()],
                tool_classes: HashMap::from([("crm/get".to_string(), vec!["customer_pii".into()])]),
            },
        );
        assert_eq!(plan.retention_days("a", &[]), Some(60));
        assert_eq!(plan.retention_days("a", &["customer_pii".into()]), Some(30));
        assert_eq!(plan.retention_days("b", &[]), Some(90));
        assert_eq!(
            plan.classes("a", &[Some("get"), Some("crm/get")]),
            vec!["customer_pii"]
        );
        let args =
            serde_json::json!({"customer": {"email": " Alice@Example.com "}, "customer_id": "C-1"});
        assert_eq!(
            plan.subject_of("a", &args).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            plan.subject_of("a", &serde_json::json!({"customer_id": 42}))
                .as_deref(),
            Some("42")
        );
        assert_eq!(plan.subject_of("b", &args), None);
    }

    #[test]
    fn key_ids_are_stable_and_safe() {
        let a = period_key_id("2026-11-26", "support", &["customer_pii".into()]);
        assert_eq!(
            a,
            period_key_id("2026-11-26", "support", &["customer_pii".into()])
        );
        assert_ne!(a, period_key_id("2026-11-26", "support", &[]));
        assert!(SealedRef::parse(&format!("wdn1:{a}+{}:AA", subject_key_id("0a1b", 2))).is_some());
        let wrapped = wrap_key(&[5; 32], &a, &[6; 32], [7; 24]);
        assert_eq!(unwrap_key(&[5; 32], &a, &wrapped), Ok([6; 32]));
        assert!(unwrap_key(&[5; 32], "p-other", &wrapped).is_err());
    }
}
