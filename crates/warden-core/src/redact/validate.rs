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
    // `%s`, `%(name)s` are format placeholders; `%21…` is a URL-encoded value.
    let percent_escape = first == b'%'
        && s.get(1).is_some_and(u8::is_ascii_hexdigit)
        && s.get(2).is_some_and(u8::is_ascii_hexdigit);
    if (matches!(first, b'$' | b'<' | b'{' | b'%') && !percent_escape) || s.starts_with(b"**") {
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
        Check::QuotedAssignment => check_quoted(text, span, whole),
        Check::CommandLine => check_command_line(text, span),
        Check::SmtpPlain => {
            // `[authzid] NUL authcid NUL passwd`: two NULs and a password after them.
            let decoded = base64_decode(s)?;
            let nuls = decoded.iter().filter(|&&b| b == 0).count();
            (nuls == 2 && decoded.last().is_some_and(|&b| b != 0)).then_some(span)
        }
        // Decoding and scanning again needs the engine: `Engine::run_rule` does it.
        Check::Decode => None,
        Check::QueryToken => {
            let ok = !is_placeholder(s)
                && s.len() >= 6
                && entropy(s) >= 3.0
                && (has_digit(s) || mixed_case(s));
            ok.then_some(span)
        }
        Check::NationalPhone => check_national_phone(text, span),
        Check::SsnLabelled => {
            let digits: Vec<u8> = s.iter().copied().filter(u8::is_ascii_digit).collect();
            let dashed = [
                digits.get(..3).unwrap_or_default(),
                b"-",
                digits.get(3..5).unwrap_or_default(),
                b"-",
                digits.get(5..).unwrap_or_default(),
            ]
            .concat();
            (digits.len() == 9
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
                && check_ssn(&dashed, None, None))
            .then_some(span)
        }
        Check::Nino => check_nino(s, before, after).then_some(span),
        Check::Aadhaar => check_aadhaar(text, span).then_some(span),
        Check::SteuerId => check_steuer_id(text, span).then_some(span),
        Check::DniNie => check_dni_nie(s, before, after).then_some(span),
        Check::Bsn => {
            let digits: Vec<u8> = s.iter().copied().filter(u8::is_ascii_digit).collect();
            (!after.is_some_and(|b| b.is_ascii_alphanumeric()) && bsn_eleven_test(&digits))
                .then_some(span)
        }
    }
}

/// A cheap test, before a digit-triggered rule's regex runs, that a run of `digits` digits at
/// `start..end` could be what the rule looks for.
pub(crate) fn digit_run_may_fit(
    check: Check,
    text: &[u8],
    start: usize,
    end: usize,
    digits: usize,
) -> bool {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    match check {
        // A trunk or international `0` first.
        Check::NationalPhone => at(start) == b'0',
        Check::Aadhaar => digits == 12 && at(start) >= b'2',
        Check::SteuerId => digits == 11 && at(start) != b'0',
        // A letter after (DNI), or X/Y/Z before (NIE).
        Check::DniNie => {
            (digits == 8 || digits == 7)
                && (at(end).is_ascii_uppercase()
                    || (at(end) == b'-' && at(end + 1).is_ascii_uppercase()))
        }
        _ => true,
    }
}

/// Documentation examples that must stay readable: AWS's `AKIAIOSFODNN7EXAMPLE` and
/// `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY` (any value with `EXAMPLE` in capitals), and
/// jwt.io's sample token (its payload: `"sub": "1234567890"`, `"name": "John Doe"`).
pub(crate) fn is_documentation_example(s: &[u8]) -> bool {
    const JWT_IO_PAYLOADS: &[&[u8]] = &[
        // {"sub":"1234567890","name":"John Doe","iat":1516239022}
        b"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
        // {"sub":"1234567890","name":"John Doe","admin":true,"iat":1516239022}
        b"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiYWRtaW4iOnRydWUsImlhdCI6MTUxNjIzOTAyMn0",
        // {"sub":"1234567890","name":"John Doe","admin":true}
        b"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiYWRtaW4iOnRydWV9",
    ];
    s.windows(7).any(|w| w == b"EXAMPLE")
        || JWT_IO_PAYLOADS
            .iter()
            .any(|p| s.windows(p.len()).any(|w| w == *p))
}

/// Is one of `words` (lower case) within `within` bytes before `at`, case-insensitively?
pub(crate) fn label_before(text: &[u8], at: usize, words: &[&[u8]], within: usize) -> bool {
    let from = at.saturating_sub(within);
    let Some(before) = text.get(from..at) else {
        return false;
    };
    let lower = before.to_ascii_lowercase();
    words
        .iter()
        .any(|w| lower.windows(w.len()).any(|x| x == *w))
}

/// A quoted value: from the opening quote to the closing one at the same escape level (the
/// regex stops at the first quote or backslash; a value may hold the other quote or an
/// escaped one).
fn check_quoted(
    text: &[u8],
    (start, _): (usize, usize),
    whole: (usize, usize),
) -> Option<(usize, usize)> {
    let q = *text.get(start.checked_sub(1)?)?;
    if q != b'"' && q != b'\'' {
        return None;
    }
    // The escape level of the opening quote: backslashes right before it.
    let mut level = 0;
    while start >= level + 2 && text.get(start - 2 - level) == Some(&b'\\') {
        level += 1;
    }
    let mut end = None;
    let mut i = start;
    while i < text.len() && i < start + 512 {
        let b = *text.get(i)?;
        if b == b'\n' || b == b'\r' {
            break;
        }
        if b == q {
            let mut n = 0;
            while i > start + n && text.get(i - 1 - n) == Some(&b'\\') {
                n += 1;
            }
            if n == level {
                end = Some(i - level);
                break;
            }
        }
        i += 1;
    }
    let end = end?;
    let s = text.get(start..end)?;
    if s.is_empty()
        || is_placeholder(s)
        || is_keyword_value(s)
        || is_code_reference(s)
        || s.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        || s.windows(3).any(|w| w == b"://")
    {
        return None;
    }
    let key = text.get(whole.0..start)?.to_ascii_lowercase();
    let password_like = key.windows(4).any(|w| w == b"pass") || key.windows(3).any(|w| w == b"pwd");
    let ok = if password_like {
        s.len() >= 4 && entropy(s) >= 1.5
    } else {
        !s.contains(&b' ') && s.len() >= 12 && entropy(s) >= 3.0 && (has_digit(s) || mixed_case(s))
    };
    ok.then_some((start, end))
}

/// A command-line password: its quotes are part of the match (redacted with it); a variable,
/// a placeholder or a numeric id (`-u 1000:1000`) is kept.
fn check_command_line(text: &[u8], (start, end): (usize, usize)) -> Option<(usize, usize)> {
    let s = text.get(start..end)?;
    let inner = match (s.first(), s.last()) {
        (Some(b'\''), Some(b'\'')) | (Some(b'"'), Some(b'"')) if s.len() >= 2 => {
            s.get(1..s.len() - 1)?
        }
        _ => s,
    };
    if inner.is_empty()
        || is_placeholder(inner)
        || is_keyword_value(inner)
        || inner.iter().all(u8::is_ascii_digit)
        || inner.starts_with(b"-")
    {
        return None;
    }
    Some((start, end))
}

/// Phone numbers that start with a trunk `0` or with `00`: 10–12 digits (9–15 after `00`),
/// not a date (`01.12.2025 14`), and either grouped with separators or after a phone label.
fn check_national_phone(text: &[u8], (start, end): (usize, usize)) -> Option<(usize, usize)> {
    let s = text.get(start..end)?;
    let before = start.checked_sub(1).and_then(|i| text.get(i)).copied();
    let after = text.get(end).copied();
    if before.is_some_and(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-' | b'+' | b':' | b'=')
    }) && !(before == Some(b'=') && label_before(text, start, PHONE_LABELS, 24))
    {
        return None;
    }
    let next = text.get(end + 1).copied();
    if after.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/' | b':'))
        || (matches!(after, Some(b'.' | b',')) && next.is_some_and(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let digits: Vec<u8> = s.iter().copied().filter(u8::is_ascii_digit).collect();
    let n = digits.len();
    let intl = s.starts_with(b"00");
    if (intl && !(11..=17).contains(&n)) || (!intl && !(10..=12).contains(&n)) {
        return None;
    }
    // A date then a time: `01.12.2025 14…`, `01/12/2025 …`.
    let groups: Vec<&[u8]> = s
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    if let [a, b, c, ..] = groups.as_slice() {
        if a.len() <= 2 && b.len() <= 2 && c.len() == 4 {
            return None;
        }
    }
    let grouped = groups.len() >= 2;
    (grouped || label_before(text, start, PHONE_LABELS, 32)).then_some((start, end))
}

const PHONE_LABELS: &[&[u8]] = &[
    b"tel",
    b"phone",
    b"mobile",
    b"mob",
    b"cell",
    b"fax",
    b"call",
    b"sms",
    b"whatsapp",
    b"handy",
    b"telefon",
    b"t\xc3\xa9l",
    b"contact",
    b"ring",
    b"text me",
    b"reach me",
    b"number",
];

/// UK National Insurance number (HMRC NIM39110): no D, F, I, Q, U, V in the prefix, no O
/// second, not BG, GB, KN, NK, NT, TN or ZZ; suffix A–D.
fn check_nino(s: &[u8], before: Option<u8>, after: Option<u8>) -> bool {
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        || after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return false;
    }
    let (Some(&a), Some(&b)) = (s.first(), s.get(1)) else {
        return false;
    };
    let bad = |c: u8| matches!(c, b'D' | b'F' | b'I' | b'Q' | b'U' | b'V');
    let prefix = [a, b];
    !bad(a)
        && !bad(b)
        && b != b'O'
        && !matches!(
            &prefix,
            b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
        )
}

/// Verhoeff check (the dihedral group D5), as Aadhaar uses for its last digit.
pub(crate) fn verhoeff(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, d) in digits.iter().rev().enumerate() {
        let v = usize::from(d.wrapping_sub(b'0'));
        let Some(p) = P.get(i % 8).and_then(|row| row.get(v)) else {
            return false;
        };
        let Some(&next) = D
            .get(usize::from(c))
            .and_then(|row| row.get(usize::from(*p)))
        else {
            return false;
        };
        c = next;
    }
    c == 0
}

/// Digits of a number whose neighbours are not part of it (no digit, letter or `_` next to
/// it, and no separator then a digit).
fn standalone_digits(text: &[u8], (start, end): (usize, usize)) -> Option<Vec<u8>> {
    let at = |i: Option<usize>| i.and_then(|i| text.get(i)).copied();
    let before = at(start.checked_sub(1));
    let after = at(Some(end));
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'+'))
        || after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let sep = |b: Option<u8>| matches!(b, Some(b' ' | b'-' | b'.'));
    if (sep(before) && at(start.checked_sub(2)).is_some_and(|b| b.is_ascii_digit()))
        || (sep(after) && at(Some(end + 1)).is_some_and(|b| b.is_ascii_digit()))
        || (before == Some(b'-')
            && at(start.checked_sub(2)).is_some_and(|b| b.is_ascii_alphanumeric()))
    {
        return None;
    }
    Some(
        text.get(start..end)?
            .iter()
            .copied()
            .filter(u8::is_ascii_digit)
            .collect(),
    )
}

/// Aadhaar: Verhoeff-valid; written in groups of four, or after its label.
fn check_aadhaar(text: &[u8], span: (usize, usize)) -> bool {
    let Some(digits) = standalone_digits(text, span) else {
        return false;
    };
    let grouped = text
        .get(span.0..span.1)
        .is_some_and(|s| s.iter().any(|b| !b.is_ascii_digit()));
    digits.len() == 12
        && verhoeff(&digits)
        && (grouped || label_before(text, span.0, &[b"aadhaar", b"aadhar", b"uid"], 40))
}

/// German Steuer-IdNr (§ 139b AO): 11 digits, the first not 0; in the first ten one digit
/// occurs two or three times and the rest at most once; the last is the ISO 7064 MOD 11,10
/// check digit. Without separators only after its label.
fn check_steuer_id(text: &[u8], span: (usize, usize)) -> bool {
    let Some(d) = standalone_digits(text, span) else {
        return false;
    };
    if d.len() != 11 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &b in d.iter().take(10) {
        if let Some(c) = counts.get_mut(usize::from(b.wrapping_sub(b'0'))) {
            *c += 1;
        }
    }
    let repeated = counts.iter().filter(|&&c| c >= 2).count();
    if repeated != 1 || counts.iter().any(|&c| c > 3) {
        return false;
    }
    let mut product = 10u32;
    for &b in d.iter().take(10) {
        let mut sum = (u32::from(b - b'0') + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    let grouped = text.get(span.0..span.1).is_some_and(|s| s.contains(&b' '));
    d.last().map(|b| u32::from(b - b'0')) == Some(check)
        && (grouped
            || label_before(
                text,
                span.0,
                &[
                    b"steuer",
                    b"idnr",
                    b"identifikationsnummer",
                    b"tax id",
                    b"tax-id",
                    b"tin",
                ],
                40,
            ))
}

/// Spanish DNI/NIE: the letter is `TRWAGMYFPDXBNJZSQVHLCKE`[number mod 23], with a NIE's
/// X, Y, Z read as 0, 1, 2.
fn check_dni_nie(s: &[u8], before: Option<u8>, after: Option<u8>) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/'))
        || after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return false;
    }
    let Some(&letter) = s.last() else {
        return false;
    };
    let mut n = 0u64;
    for &b in s.iter().take(s.len() - 1) {
        n = match b {
            b'0'..=b'9' => n * 10 + u64::from(b - b'0'),
            b'X' => 0,
            b'Y' => 1,
            b'Z' => 2,
            _ => n,
        };
    }
    usize::try_from(n % 23)
        .ok()
        .and_then(|i| LETTERS.get(i))
        .is_some_and(|&l| l == letter)
}

/// Dutch BSN 11-test: 9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 (mod 11); 8 digits have a leading 0.
pub(crate) fn bsn_eleven_test(digits: &[u8]) -> bool {
    let padded: Vec<u8> = match digits.len() {
        9 => digits.to_vec(),
        8 => std::iter::once(b'0')
            .chain(digits.iter().copied())
            .collect(),
        _ => return false,
    };
    if padded.iter().all(|&b| b == b'0') {
        return false;
    }
    let mut sum = 0i64;
    for (i, &b) in padded.iter().enumerate() {
        let d = i64::from(b - b'0');
        sum += if i == 8 { -d } else { (9 - i as i64) * d };
    }
    sum % 11 == 0
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
