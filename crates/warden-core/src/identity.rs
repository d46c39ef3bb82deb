//! Identity primitives, pure: credential formats, TOTP (RFC 6238), the OAuth 2.0
//! client-credentials request (RFC 6749 §4.4), durations.
//!
//! No randomness and no clock here: callers pass random bytes and the time in.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every Warden credential starts with this, so secret scanners can find leaked ones.
pub const CREDENTIAL_PREFIX: &str = "wdn_";

/// Length of a credential's public id, in hex digits.
const ID_HEX: usize = 16;
/// Length of a credential's secret part, in hex digits (32 random bytes).
const SECRET_HEX: usize = 64;

/// What a credential is for; the two letters after `wdn_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// An agent's bearer token (`wdn_at_`).
    AgentToken,
    /// An OAuth client secret (`wdn_cs_`).
    ClientSecret,
    /// A human session (`wdn_ss_`), sent as a cookie.
    Session,
    /// The sealed break-glass admin credential (`wdn_bg_`).
    BreakGlass,
}

impl CredentialKind {
    pub fn tag(self) -> &'static str {
        match self {
            Self::AgentToken => "at",
            Self::ClientSecret => "cs",
            Self::Session => "ss",
            Self::BreakGlass => "bg",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "at" => Some(Self::AgentToken),
            "cs" => Some(Self::ClientSecret),
            "ss" => Some(Self::Session),
            "bg" => Some(Self::BreakGlass),
            _ => None,
        }
    }
}

/// A credential in Warden's format: `wdn_<kind>_<16 hex id>_<64 hex secret>`. The id is public
/// (it names the stored row, and appears in lists and ledger records); the whole string is
/// the secret, stored only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    pub kind: CredentialKind,
    pub id: &'a str,
}

/// Format a credential from its kind, 8 id bytes and 32 secret bytes (random, from the caller).
pub fn format_credential(kind: CredentialKind, id: [u8; 8], secret: [u8; 32]) -> String {
    format!(
        "{CREDENTIAL_PREFIX}{}_{}_{}",
        kind.tag(),
        hex::encode(id),
        hex::encode(secret)
    )
}

/// Parse a presented credential. `None` for anything not exactly in the format (wrong
/// prefix, truncated, extended, upper-case hex): callers answer every failure the same way.
pub fn parse_credential(text: &str) -> Option<Credential<'_>> {
    let rest = text.strip_prefix(CREDENTIAL_PREFIX)?;
    let (tag, rest) = rest.split_once('_')?;
    let kind = CredentialKind::from_tag(tag)?;
    let (id, secret) = rest.split_once('_')?;
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(id, ID_HEX) || !lower_hex(secret, SECRET_HEX) {
        return None;
    }
    Some(Credential { kind, id })
}

/// SHA-256 of a whole credential: what the store keeps. Credentials carry 256 random bits, so
/// a fast hash is enough (no dictionary to guess from).
pub fn credential_hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// The first 12 hex digits of a hash: enough to tell records apart, useless to an attacker.
pub fn hash_prefix(hash: &[u8; 32]) -> String {
    hex::encode(hash).chars().take(12).collect()
}

// ---------------------------------------------------------------------------------------
// TOTP: RFC 6238 over HOTP (RFC 4226), HMAC-SHA-1, 30-second steps, 6 digits.

/// Seconds per TOTP time step (RFC 6238 §4.1, X = 30).
pub const TOTP_STEP_SECS: u64 = 30;
/// Digits of a code.
pub const TOTP_DIGITS: u32 = 6;

/// HOTP value (RFC 4226 §5.3) of `counter` under `key`.
pub fn hotp(key: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.get(19).copied().unwrap_or(0) & 0x0f);
    let word = digest
        .get(offset..offset + 4)
        .map(|b| b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x)))
        .unwrap_or(0);
    (word & 0x7fff_ffff) % 10u32.pow(TOTP_DIGITS)
}

/// The RFC 6238 time step of a Unix time.
pub fn totp_step(unix_secs: u64) -> u64 {
    unix_secs / TOTP_STEP_SECS
}

/// Check a code against the steps `now-1`, `now`, `now+1` (RFC 6238 §5.2: one step of clock
/// drift either way). A step at or before `last_used` is refused, so a code works once.
/// Returns the step that matched. All three candidates are compared, in constant time.
pub fn verify_totp(key: &[u8], code: &str, unix_secs: u64, last_used: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = totp_step(unix_secs);
    let mut matched = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let want = format!("{:06}", hotp(key, step));
        let eq: bool = want.as_bytes().ct_eq(code.as_bytes()).into();
        let fresh = last_used.is_none_or(|l| step > l);
        if eq && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            let idx = ((buffer >> (bits - 5)) & 31) as usize;
            out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            bits -= 5;
        }
    }
    if bits > 0 {
        let idx = ((buffer << (5 - bits)) & 31) as usize;
        out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
    }
    out
}

/// The bytes of RFC 4648 base32 without padding (as in `otpauth://` URIs); `None` when a
/// character is outside the upper-case alphabet. Trailing bits that do not fill a byte are
/// dropped, as the encoding pads them with zeros.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = ((buffer << 5) | u32::from(v)) & 0xFFFF;
        bits += 5;
        if bits >= 8 {
            out.push(((buffer >> (bits - 8)) & 0xFF) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The `otpauth://` URI an authenticator app scans (Key Uri Format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
        enc(issuer),
        enc(account),
        base32_encode(secret),
        enc(issuer)
    )
}

// ---------------------------------------------------------------------------------------
// OAuth 2.0 client-credentials grant (RFC 6749 §4.4, errors §5.2).

/// Largest token-request body read, in bytes.
pub const MAX_OAUTH_BODY: usize = 8 * 1024;

/// A parsed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    pub client_id: String,
    pub client_secret: String,
    /// Requested scope: space-separated tool names (RFC 6749 §3.3); `None` = the card's tools.
    pub scope: Option<Vec<String>>,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type` or `invalid_scope`.
    pub error: &'static str,
    /// Human-readable; never echoes a secret.
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }
}

/// Parse a token request: `application/x-www-form-urlencoded` body with
/// `grant_type=client_credentials`, client authentication by HTTP Basic (RFC 6749 §2.3.1;
/// id and secret form-urlencoded, then base64) or by `client_id`/`client_secret` in the body,
/// never both; every parameter at most once (§3.2).
pub fn parse_token_request(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<ClientCredentialsRequest, OAuthError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    if body.len() > MAX_OAUTH_BODY {
        return Err(OAuthError::new("invalid_request", "the body is too large"));
    }
    let mut grant_type = None;
    let mut body_id = None;
    let mut body_secret = None;
    let mut scope = None;
    for (k, v) in form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut grant_type,
            "client_id" => &mut body_id,
            "client_secret" => &mut body_secret,
            "scope" => &mut scope,
            _ => continue,
        };
        if slot.is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                format!("parameter `{k}` is repeated"),
            ));
        }
        *slot = Some(v.into_owned());
    }
    match grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            ))
        }
        None => return Err(OAuthError::new("invalid_request", "grant_type is missing")),
    }
    let basic = match authorization {
        Some(h) => Some(parse_basic(h)?),
        None => None,
    };
    let (client_id, client_secret) = match (basic, body_id, body_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method: HTTP Basic or the body, not both",
            ))
        }
        (Some(pair), None, None) => pair,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return Err(OAuthError::new(
                "invalid_client",
                "client authentication is missing",
            ))
        }
    };
    if client_id.is_empty() || client_id.len() > 128 || client_secret.len() > 256 {
        return Err(OAuthError::new(
            "invalid_client",
            "client authentication failed",
        ));
    }
    let scope = match scope {
        None => None,
        Some(s) => {
            let items: Vec<String> = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            if items.is_empty() || items.len() > 256 || items.iter().any(|i| i.len() > 256) {
                return Err(OAuthError::new("invalid_scope", "the scope is malformed"));
            }
            Some(items)
        }
    };
    Ok(ClientCredentialsRequest {
        client_id,
        client_secret,
        scope,
    })
}

fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::new("invalid_client", "client authentication failed");
    let (scheme, rest) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let dec = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((dec(id), dec(secret)))
}

// ---------------------------------------------------------------------------------------

/// Parse a duration: `90s`, `15m`, `1h`, `7d` (one number, one unit). Seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(unit_at);
    let n: u64 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B test vectors for SHA-1 (8 digits there; the last 6 are ours).
    #[test]
    fn rfc6238_vectors() {
        let key = b"12345678901234567890";
        for (t, code8) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(hotp(key, totp_step(t)), code8 % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn totp_window_and_reuse() {
        let key = b"12345678901234567890";
        let t = 1_111_111_111;
        let code = format!("{:06}", hotp(key, totp_step(t)));
        assert_eq!(verify_totp(key, &code, t, None), Some(totp_step(t)));
        assert_eq!(verify_totp(key, &code, t + 30, None), Some(totp_step(t)));
        assert_eq!(verify_totp(key, &code, t + 90, None), None);
        assert_eq!(verify_totp(key, &code, t, Some(totp_step(t))), None);
        assert_eq!(verify_totp(key, "12345", t, None), None);
    }

    #[test]
    fn base32_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        // RFC 4648 §10 vectors, without padding, both ways.
        for (plain, coded) in [
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_decode(coded).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(base32_decode("mzxw6"), None);
        let seed: Vec<u8> = (0u8..=255).collect();
        assert_eq!(base32_decode(&base32_encode(&seed)), Some(seed));
    }

    #[test]
    fn credential_roundtrip_and_truncation() {
        let t = format_credential(CredentialKind::AgentToken, [1; 8], [2; 32]);
        let c = parse_credential(&t).unwrap();
        assert_eq!(c.kind, CredentialKind::AgentToken);
        assert_eq!(c.id, "0101010101010101");
        for cut in 0..t.len() {
            assert!(parse_credential(&t[..cut]).is_none(), "cut {cut}");
        }
        assert!(parse_credential(&format!("{t}0")).is_none());
        assert!(parse_credential(&t.to_uppercase()).is_none());
    }

    #[test]
    fn token_request_forms() {
        let ct = Some("application/x-www-form-urlencoded");
        let r = parse_token_request(
            ct,
            None,
            b"grant_type=client_credentials&client_id=a&client_secret=b%2Bc&scope=x+y",
        )
        .unwrap();
        assert_eq!(r.client_secret, "b+c");
        assert_eq!(r.scope, Some(vec!["x".into(), "y".into()]));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("a:b%2Bc")
        );
        let r = parse_token_request(ct, Some(&basic), b"grant_type=client_credentials").unwrap();
        assert_eq!(
            (r.client_id.as_str(), r.client_secret.as_str()),
            ("a", "b+c")
        );
        let e = parse_token_request(ct, None, b"grant_type=password").unwrap_err();
        assert_eq!(e.error, "unsupported_grant_type");
        let e = parse_token_request(ct, None, b"grant_type=client_credentials").unwrap_err();
        assert_eq!(e.error, "invalid_client");
        let e = parse_token_request(Some("application/json"), None, b"{}").unwrap_err();
        assert_eq!(e.error, "invalid_request");
        let e = parse_token_request(
            ct,
            Some(&basic),
            b"grant_type=client_credentials&client_id=a&client_secret=b",
        )
        .unwrap_err();
        assert_eq!(e.error, "invalid_request");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("1h"), Some(3600));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("10"), None);
    }
}
