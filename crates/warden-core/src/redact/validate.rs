//! Validators: what a rule's regex cannot say (checksums, entropy, placeholders, context).

use super::rules::Check;

/// A byte that may continue a token (so a match next to it is part of something longer).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/')
}

/// Shannon entropy of the bytes, in bits per byte.
pub(crate) fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn has_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
}

fn mixed_case(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_uppercase) && s.iter().any(u8::is_ascii_lowercase)
}

/// Values that stand for a secret without being one: `${VAR}`, `<password>`, `****`,
/// `changeme`, `%s`.
pub(crate) fn is_placeholder(s: &[u8]) -> bool {
    let Some(&first) = s.first() else {
        return true;
    };
    if matches!(first, b'$' | b'<' | b'{' | b'%' | b'*') && !s.starts_with(b"%2") {
        return true;
    }
    if s.iter().all(|&b| b == first) {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    const WORDS: &[&[u8]] = &[
        b"changeme",
        b"change_me",
        b"redacted",
        b"example",
        b"placeholder",
        b"your_password",
        b"yourpassword",
        b"your-password",
        b"your_token",
        b"your_api_key",
        b"password",
        b"undefined",
        b"required",
        b"optional",
    ];
    WORDS.contains(&lower.as_slice())
        || lower.starts_with(b"xxxx")
        || lower.starts_with(b"your_")
        || lower.starts_with(b"env:")
        || lower.starts_with(b"os.")
        || lower.starts_with(b"process.env")
}

fn is_keyword_value(s: &[u8]) -> bool {
    let lower = s.to_ascii_lowercase();
    matches!(
        lower.as_slice(),
        b"true" | b"false" | b"null" | b"none" | b"nil" | b"undefined" | b"yes" | b"no"
    )
}

/// A dotted identifier such as `settings.DB_PASSWORD` or `config.token`: code, not a value.
fn is_code_reference(s: &[u8]) -> bool {
    s.contains(&b'.')
        && s.iter()
            .all(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.'))
}

/// Decide one match. `text` is the whole haystack; `span` the part to redact; `whole` the
/// regex's full match. Returns the (possibly adjusted) span to redact, or `None` to keep it.
pub(crate) fn check(
    check: Check,
    text: &[u8],
    span: (usize, usize),
    whole: (usize, usize),
) -> Option<(usize, usize)> {
    let (start, end) = span;
    let s = text.get(start..end)?;
    let before = start.checked_sub(1).and_then(|i| text.get(i)).copied();
    let after = text.get(end).copied();
    match check {
        Check::Plain => Some(span),
        Check::Token {
            min_len,
            bits,
            hex_ok,
        } => {
            let ok = s.len() >= min_len
                && entropy(s) >= bits
                && (hex_ok || !s.iter().all(u8::is_ascii_hexdigit))
                && (has_digit(s) || mixed_case(s))
                && !is_placeholder(s);
            ok.then_some(span)
        }
        Check::Assignment => {
            if is_placeholder(s)
                || is_keyword_value(s)
                || s.iter().all(|b| b.is_ascii_digit() || *b == b'.')
                || is_code_reference(s)
                || s.windows(3).any(|w| w == b"://")
                || after == Some(b'(')
            {
                return None;
            }
            let key = text.get(whole.0..start)?.to_ascii_lowercase();
            let password_like =
                key.windows(4).any(|w| w == b"pass") || key.windows(3).any(|w| w == b"pwd");
            let ok = if password_like {
                s.len() >= 6 && entropy(s) >= 2.0
            } else {
                s.len() >= 12 && entropy(s) >= 3.0 && (has_digit(s) || mixed_case(s))
            };
            ok.then_some(span)
        }
        Check::UriPassword => (!is_placeholder(s) || s == b"password").then_some(span),
        Check::BasicAuth => {
            let decoded = base64_decode(s)?;
            let colon = decoded.iter().position(|&b| b == b':')?;
            let printable = decoded.iter().all(|b| (0x20..0x7f).contains(b));
            (printable && colon > 0 && colon + 1 < decoded.len()).then_some(span)
        }
        Check::Email => check_email(text, span),
        Check::Phone => check_phone(s, before, after).then_some(span),
        Check::Card => check_card(text, span),
        Check::Iban => check_iban(text, span, before),
        Check::Ssn => check_ssn(s, before, after).then_some(span),
    }
}

fn check_email(text: &[u8], (mut start, end): (usize, usize)) -> Option<(usize, usize)> {
    // The window may have cut a long local part: take all of it.
    while let Some(&b) = start.checked_sub(1).and_then(|i| text.get(i)) {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-') {
            start -= 1;
        } else {
            break;
        }
    }
    let s = text.get(start..end)?;
    let after = text.get(end).copied();
    if after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'@') {
        return None;
    }
    let at = s.iter().position(|&b| b == b'@')?;
    let local = s.get(..at)?;
    let domain = s.get(at + 1..)?;
    // `git@github.com:org/repo.git` is an SSH remote, not a person.
    if local == b"git" && after == Some(b':') {
        return None;
    }
    let tld = domain.rsplit(|&b| b == b'.').next()?.to_ascii_lowercase();
    const FILE_EXTENSIONS: &[&[u8]] = &[
        b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"js", b"mjs", b"css", b"json",
        b"map", b"ts", b"tsx", b"html", b"txt", b"md", b"py", b"rs", b"lock", b"tgz", b"zip",
    ];
    if FILE_EXTENSIONS.contains(&tld.as_slice()) {
        return None;
    }
    Some((start, end))
}

fn check_phone(s: &[u8], before: Option<u8>, after: Option<u8>) -> bool {
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-')) {
        return false;
    }
    if after.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'-')) {
        return false;
    }
    let digits = s.iter().filter(|b| b.is_ascii_digit()).count();
    if s.first() == Some(&b'+') {
        (8..=15).contains(&digits)
    } else {
        digits == 10 || digits == 11
    }
}

/// Luhn checksum (ISO/IEC 7812-1 Annex B) over ASCII digits.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether the number starts like a card of a network that issues that length.
fn card_network(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| -> u32 {
        d.iter()
            .take(k)
            .fold(0u32, |acc, b| acc * 10 + u32::from(b.wrapping_sub(b'0')))
    };
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    match p1 {
        4 => matches!(n, 13 | 16 | 19),
        5 => ((51..=55).contains(&p2) && n == 16) || (matches!(p2, 50 | 56..=58) && n >= 12),
        2 => (2221..=2720).contains(&p4) && n == 16,
        3 => {
            (matches!(p2, 34 | 37) && n == 15)
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&n))
                || ((matches!(p2, 36 | 38 | 39) || (300..=305).contains(&p3))
                    && (14..=19).contains(&n))
        }
        6 => {
            (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || p2 == 62 || p2 == 67)
                && (16..=19).contains(&n)
        }
        _ => false,
    }
}

fn check_card(text: &[u8], (start, end): (usize, usize)) -> Option<(usize, usize)> {
    let before = start.checked_sub(1).and_then(|i| text.get(i)).copied();
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')) {
        return None;
    }
    let s = text.get(start..end)?;
    // Positions of the digits and the separator used, if any.
    let digits: Vec<(usize, u8)> = s
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_digit())
        .map(|(i, &b)| (i, b))
        .collect();
    let sep = s.iter().find(|b| !b.is_ascii_digit()).copied();
    if sep.is_some() && s.iter().any(|&b| !b.is_ascii_digit() && Some(b) != sep) {
        return None;
    }
    // The greedy regex may have taken digits that follow the card (a CVV, an amount):
    // try the longest valid prefix.
    for n in (13..=digits.len().min(19)).rev() {
        let (last_at, _) = *digits.get(n - 1)?;
        let cut = start + last_at + 1;
        let after = text.get(cut).copied();
        if after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let ds: Vec<u8> = digits.iter().take(n).map(|&(_, b)| b).collect();
        if card_network(&ds) && luhn(&ds) {
            return Some((start, cut));
        }
    }
    None
}

fn check_ssn(s: &[u8], before: Option<u8>, after: Option<u8>) -> bool {
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        || after.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        std::str::from_utf8(s.get(r)?).ok()?.parse().ok()
    };
    let (Some(area), Some(group), Some(serial)) = (num(0..3), num(4..6), num(7..11)) else {
        return false;
    };
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// IBAN lengths per country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VG", 24),
    (b"XK", 20),
];

/// ISO 7064 MOD 97-10 over an IBAN's characters (country and check digits moved to the end,
/// letters as 10..35); valid when the remainder is 1.
pub(crate) fn iban_mod97(chars: &[u8]) -> bool {
    let mut rem = 0u32;
    let moved = chars.iter().skip(4).chain(chars.iter().take(4));
    for &c in moved {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn check_iban(
    text: &[u8],
    (start, end): (usize, usize),
    before: Option<u8>,
) -> Option<(usize, usize)> {
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let s = text.get(start..end)?;
    let country = s.get(..2)?;
    let len = IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, l)| l)?;
    let mut chars = Vec::with_capacity(len);
    let mut cut = None;
    for (i, &b) in s.iter().enumerate() {
        if b == b' ' {
            continue;
        }
        chars.push(b);
        if chars.len() == len {
            cut = Some(start + i + 1);
            break;
        }
    }
    let cut = cut?;
    let after = text.get(cut).copied();
    if after.is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    iban_mod97(&chars).then_some((start, cut))
}

/// Standard base64 (RFC 4648 §4), padding optional. `None` if it is not base64.
pub(crate) fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let body: Vec<u8> = s.iter().copied().take_while(|&b| b != b'=').collect();
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for b in body {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_mod97_known_values() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(luhn(b"378282246310005"));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(!iban_mod97(b"DE89370400440532013001"));
    }

    #[test]
    fn entropy_of_uniform_and_constant() {
        assert!(entropy(b"aaaaaaaa") < 0.01);
        assert!((entropy(b"abcdefgh") - 3.0).abs() < 1e-9);
    }

    #[test]
    fn base64_decodes_user_and_password() {
        assert_eq!(base64_decode(b"dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
        assert!(base64_decode(b"a b").is_none());
    }
}
