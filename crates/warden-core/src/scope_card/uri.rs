//! Resource URIs as an upstream will read them. A grant matches by prefix on the text, but a
//! server resolves `..`, decodes `%2e%2e` and `%2f`, and may treat `\` as a separator, so
//! `file:///srv/public/../secret/key.pem` starts with `file:///srv/public/` and still reads
//! outside it. Warden does not guess how a server normalises: a URI whose path could climb
//! out of a prefix in any of those ways is refused before any grant is consulted.

/// Percent-decoding rounds tried (`%252e` → `%2e` → `.`): enough for double and triple
/// encoding; a URI still changing after them is refused as well.
const DECODE_ROUNDS: usize = 4;

/// Why `uri` cannot be matched against grants, or `None` when it can.
pub fn uri_refusal(uri: &str) -> Option<String> {
    if uri.chars().any(char::is_control) {
        return Some(format!(
            "resource URI `{}` contains control characters",
            uri.escape_debug()
        ));
    }
    let mut text = uri.to_string();
    for round in 0..=DECODE_ROUNDS {
        if let Some(why) = climbs(&text) {
            return Some(format!(
                "resource URI `{}` {why}, which a server may resolve outside the granted path",
                uri.escape_debug()
            ));
        }
        let decoded = percent_decode(&text);
        if decoded == text {
            return None;
        }
        if round == DECODE_ROUNDS {
            break;
        }
        text = decoded;
    }
    Some(format!(
        "resource URI `{}` is percent-encoded more than {DECODE_ROUNDS} times over",
        uri.escape_debug()
    ))
}

/// Whether the text has a `.`/`..` segment (split on `/` and `\`) or a NUL, after decoding.
fn climbs(text: &str) -> Option<&'static str> {
    if text.contains('\0') {
        return Some("contains a NUL byte");
    }
    let path = text.split(['?', '#']).next().unwrap_or_default();
    if path
        .split(['/', '\\'])
        .any(|segment| segment == ".." || segment == ".")
    {
        return Some("has a `.` or `..` path segment (raw or percent-encoded)");
    }
    None
}

/// `%XX` decoded byte-wise; invalid escapes kept as they are; invalid UTF-8 replaced (so a
/// changed result is still seen as changed).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
    while let Some(&b) = bytes.get(i) {
        match (b, hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::uri_refusal;

    #[test]
    fn resource_grant_prefix_is_not_escaped_by_dot_segments_or_their_encodings() {
        for bad in [
            "file:///srv/public/../secret/key.pem",
            "file:///srv/public/%2e%2e/secret/key.pem",
            "file:///srv/public/%2E%2E/secret/key.pem",
            "file:///srv/public/..%2fsecret/key.pem",
            "file:///srv/public/%2e%2e%2fsecret%2fkey.pem",
            "file:///srv/public/%252e%252e/secret/key.pem",
            "file:///srv/public/..\\secret\\key.pem",
            "file:///srv/public/./../secret",
            "file:///srv/public/a/..",
            "file:///srv/public/x%00/key.pem",
            "file:///srv/public/%25252525252e%25252525252e/k",
        ] {
            assert!(uri_refusal(bad).is_some(), "{bad} must be refused");
        }
        for good in [
            "file:///srv/public/readme.md",
            "file:///srv/public/a..b/c.txt",
            "file:///srv/public/.hidden",
            "demo://resource/static/document/instructions.md",
            "file:///srv/public/report%20q3.pdf",
            "https://example.com/x?next=../y",
        ] {
            assert_eq!(uri_refusal(good), None, "{good} must be matchable");
        }
    }
}
