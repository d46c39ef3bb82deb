//! The rule table: one entry per secret or personal-data family.
//!
//! A rule runs only near one of its keywords (found by the Aho-Corasick pass), or, for the
//! digit-shaped personal data that has no keyword (phone, card, SSN, IBAN), near a run of
//! digits found by the digit scanner. Each rule's regex is then run on a window around the
//! trigger, and its validator decides.
//!
//! Formats follow the issuers' published token layouts (prefixes such as `ghp_`, `xoxb-`,
//! `sk_live_`, `glpat-`, `AKIA`) as catalogued by gitleaks and trufflehog; the regexes here
//! are written for this engine.

/// What a rule checks after its regex matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Check {
    /// The regex is enough.
    Plain,
    /// High-entropy token: at least `min_len` bytes, Shannon entropy of at least `bits` per
    /// byte, not only hex digits unless `hex_ok` (git object ids look like keys otherwise),
    /// and a digit or both cases.
    Token {
        min_len: usize,
        bits: f64,
        hex_ok: bool,
    },
    /// `password=`-style assignment; the threshold depends on the key word.
    Assignment,
    /// A password in a URI's user-info; placeholders are kept.
    UriPassword,
    /// Base64 of `user:password`.
    BasicAuth,
    Email,
    Phone,
    /// 13–19 digits, a card-network prefix, the Luhn checksum.
    Card,
    /// ISO 13616: the country's length and the mod-97 checksum.
    Iban,
    /// US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000.
    Ssn,
    /// A quoted value after a secret label: the whole quoted string (spaces included, up to
    /// the closing quote at the same escape level: `"…"`, `\"…\"`, `\\\"…\\\"`).
    QuotedAssignment,
    /// A password given to a command line (`-p'…'`, `--password …`, `-u id:secret`).
    CommandLine,
    /// SMTP `AUTH PLAIN` (RFC 4616): base64 of `[authzid] NUL authcid NUL passwd`.
    SmtpPlain,
    /// A base64 value (a Kubernetes Secret's `data`): decoded and scanned again, with its key
    /// as context; redacted when the decoded text holds something the engine redacts.
    Decode,
    /// A password or credential URL-encoded in a query string (`?auth=…`).
    QueryToken,
    /// A phone number in national form (`020 7946 0958`) or international with `00`.
    NationalPhone,
    /// US SSN without separators, after its label.
    SsnLabelled,
    /// UK National Insurance number: prefix letters allowed by HMRC, suffix A–D.
    Nino,
    /// Indian Aadhaar: 12 digits, first 2–9, Verhoeff check digit.
    Aadhaar,
    /// German tax id (Steuer-IdNr): 11 digits, ISO 7064 MOD 11,10 check digit, one digit
    /// repeated in the first ten.
    SteuerId,
    /// Spanish DNI (8 digits) or NIE (X/Y/Z and 7 digits) with its check letter (mod 23).
    DniNie,
    /// Dutch BSN: 9 digits passing the 11-test.
    Bsn,
}

/// What may touch a match on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Anything.
    Free,
    /// Not inside a longer token: no `[A-Za-z0-9_+/-]` on either side.
    Token,
    /// A token with a distinctive prefix (`ghp_`, `AKIA`): it may be glued to other text with
    /// `-`, `_` or `.` (`sess-ghp_…`, `tool_ghp_…`, `x-AKIA…`), never to a letter, digit, `+`
    /// or `/` (it would be part of a longer token, e.g. base64).
    Glued,
}

/// How a rule is triggered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Trigger {
    /// Any of these literal keywords (case-sensitive as written; `fold` adds the lower-case,
    /// Capitalised and UPPER-CASE forms).
    Keywords {
        words: &'static [&'static str],
        fold: bool,
    },
    /// A run of at least this many digits (see `Engine::digit_windows`).
    Digits(usize),
    /// Two upper-case letters then two digits (an IBAN's country and check digits, a UK
    /// NINO's prefix), glued or with one space between.
    CountryDigits,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleDef {
    /// The `<kind>` in `[REDACTED:<kind>:<hmac8>]`; empty for the rule that keeps existing
    /// redaction markers as they are.
    pub kind: &'static str,
    pub trigger: Trigger,
    /// Compiled on bytes, ASCII only. A group named `s` is the part redacted; otherwise the
    /// whole match.
    pub pattern: &'static str,
    /// Bytes before the trigger's start and after its end that the regex sees.
    pub back: usize,
    pub fwd: usize,
    /// What may touch the redacted part on either side.
    pub bound: Bound,
    pub check: Check,
    /// Where matches overlap, the higher priority wins (specific formats over generic ones,
    /// secrets over personal data).
    pub priority: u8,
}

const fn kw(words: &'static [&'static str]) -> Trigger {
    Trigger::Keywords { words, fold: false }
}

const fn kw_fold(words: &'static [&'static str]) -> Trigger {
    Trigger::Keywords { words, fold: true }
}

const SPECIFIC: u8 = 20;
const CONTEXT: u8 = 15;
const HEADER: u8 = 12;
const GENERIC: u8 = 8;
const PERSONAL: u8 = 5;

/// An assignment operator between a key and its value, with optional quotes, themselves
/// optionally escaped once or more (`\"password\": \"…\"` inside a JSON string).
macro_rules! assign {
    () => {
        r#"(?:\\*["'])?\s*(?:=|:|:=|=>|->)\s*(?:\\*["'])?"#
    };
}

pub(crate) const RULES: &[RuleDef] = &[
    // Markers this engine wrote: kept, so redaction is idempotent.
    RuleDef {
        kind: "",
        trigger: kw(&["[REDACTED:"]),
        pattern: r"\[REDACTED:[a-z0-9_]{1,40}:[0-9a-f]{8}\]",
        back: 0,
        fwd: 64,
        bound: Bound::Free,
        check: Check::Plain,
        priority: 255,
    },
    // ---- cloud providers
    RuleDef {
        kind: "aws_access_key_id",
        trigger: kw(&["AKIA", "ASIA", "ABIA", "ACCA", "AROA", "AIDA"]),
        pattern: r"(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z2-7]{16}",
        back: 0,
        fwd: 24,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "aws_secret_access_key",
        trigger: kw_fold(&[
            "aws",
            "secret_access_key",
            "secretaccesskey",
            "SecretAccessKey",
        ]),
        pattern: concat!(
            r"(?i)(?:aws[a-z0-9_.-]{0,30}(?:secret|private)[a-z0-9_.-]{0,30}|secret_?access_?key)",
            assign!(),
            r"(?P<s>[A-Za-z0-9/+]{40})"
        ),
        back: 0,
        fwd: 160,
        bound: Bound::Token,
        check: Check::Token {
            min_len: 40,
            bits: 3.5,
            hex_ok: false,
        },
        priority: CONTEXT,
    },
    RuleDef {
        // A 40-character secret key written shortly after an access key id.
        kind: "aws_secret_access_key",
        trigger: kw(&["AKIA", "ASIA"]),
        pattern: r"(?P<s>[A-Za-z0-9/+]{40})",
        back: 0,
        fwd: 400,
        bound: Bound::Token,
        check: Check::Token {
            min_len: 40,
            bits: 4.0,
            hex_ok: false,
        },
        priority: CONTEXT,
    },
    RuleDef {
        kind: "gcp_api_key",
        trigger: kw(&["AIza"]),
        pattern: r"AIza[0-9A-Za-z_-]{35}",
        back: 0,
        fwd: 48,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        // PEM and OpenSSH private keys (also a GCP service account's `private_key`, with its
        // newlines escaped as `\n` inside JSON text).
        kind: "private_key",
        trigger: kw(&["-----BEGIN"]),
        pattern: r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----(?s:.)*?-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----",
        back: 0,
        fwd: 24 * 1024,
        bound: Bound::Free,
        check: Check::Plain,
        priority: SPECIFIC + 1,
    },
    RuleDef {
        // A private key cut off before its END line (a truncated output): the body is redacted.
        kind: "private_key",
        trigger: kw(&["-----BEGIN"]),
        pattern: r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=:,\s-]|\\[nr])*",
        back: 0,
        fwd: 24 * 1024,
        bound: Bound::Free,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "azure_storage_key",
        trigger: kw_fold(&["accountkey", "AccountKey", "SharedAccessKey"]),
        pattern: r"(?i)(?:account|sharedaccess)key\s*=\s*(?P<s>[A-Za-z0-9+/]{40,}={0,2})",
        back: 0,
        fwd: 140,
        bound: Bound::Free,
        check: Check::Token {
            min_len: 40,
            bits: 4.0,
            hex_ok: false,
        },
        priority: SPECIFIC,
    },
    RuleDef {
        // Entra ID (Azure AD) client secrets: three characters, a digit, `Q~`, then 31–34.
        kind: "azure_client_secret",
        trigger: kw(&["Q~"]),
        pattern: r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}",
        back: 4,
        fwd: 40,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "azure_sas_signature",
        trigger: kw(&["sig="]),
        pattern: r"sig=(?P<s>[A-Za-z0-9%+/]{40,}(?:%3D|=){0,2})",
        back: 0,
        fwd: 130,
        bound: Bound::Free,
        check: Check::Token {
            min_len: 40,
            bits: 3.5,
            hex_ok: false,
        },
        priority: SPECIFIC,
    },
    // ---- source hosting
    RuleDef {
        kind: "github_token",
        trigger: kw(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
        pattern: r"gh[pousr]_[A-Za-z0-9]{36,}",
        back: 0,
        fwd: 256,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "github_token",
        trigger: kw(&["github_pat_"]),
        pattern: r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        back: 0,
        fwd: 96,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "gitlab_token",
        trigger: kw(&[
            "glpat-", "gldt-", "glptt-", "glrt-", "gloas-", "glcbt-", "glsoat-", "glft-",
        ]),
        pattern: r"gl(?:pat|dt|ptt|rt|oas|cbt|soat|ft)-[0-9A-Za-z_-]{20,}",
        back: 0,
        fwd: 96,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "bitbucket_app_password",
        trigger: kw(&["ATBB"]),
        pattern: r"ATBB[A-Za-z0-9_=.-]{32,}",
        back: 0,
        fwd: 72,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    // ---- chat
    RuleDef {
        kind: "slack_token",
        trigger: kw(&[
            "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xoxe.", "xapp-",
        ]),
        pattern: r"(?:xoxe\.xox[bp]|xox[baprse])-[0-9A-Za-z-]{10,}|xapp-[0-9]-[A-Z0-9]{6,}-[0-9]{6,}-[a-f0-9]{32,}",
        back: 0,
        fwd: 260,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "slack_webhook",
        trigger: kw(&["hooks.slack.com"]),
        pattern: r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
        back: 8,
        fwd: 220,
        bound: Bound::Free,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "discord_webhook",
        trigger: kw(&["discord.com/api/webhooks", "discordapp.com/api/webhooks"]),
        pattern: r"https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{15,20}/[A-Za-z0-9_-]{60,70}",
        back: 20,
        fwd: 130,
        bound: Bound::Free,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "discord_bot_token",
        trigger: kw_fold(&["discord", "Bot "]),
        pattern: r"(?P<s>[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40})",
        back: 0,
        fwd: 200,
        bound: Bound::Token,
        check: Check::Plain,
        priority: CONTEXT,
    },
    RuleDef {
        kind: "telegram_bot_token",
        trigger: kw(&[":AA"]),
        // Also inside Bot API URLs: `api.telegram.org/bot<token>/sendMessage`.
        pattern: r"(?:^|[^A-Za-z0-9_-]|bot)(?P<s>[0-9]{8,10}:AA[A-Za-z0-9_-]{33})(?:$|[^A-Za-z0-9_-])",
        back: 14,
        fwd: 40,
        bound: Bound::Free,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    // ---- payments
    RuleDef {
        kind: "stripe_key",
        trigger: kw(&["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"]),
        pattern: r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20,}|whsec_[A-Za-z0-9+/=]{32,}",
        back: 0,
        fwd: 256,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "square_token",
        trigger: kw(&["sq0atp-", "sq0csp-", "EAAA"]),
        pattern: r"sq0atp-[0-9A-Za-z_-]{22}|sq0csp-[0-9A-Za-z_-]{43}|EAAA[A-Za-z0-9_-]{60}",
        back: 0,
        fwd: 70,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "braintree_token",
        trigger: kw(&["access_token$production$", "access_token$sandbox$"]),
        pattern: r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}",
        back: 0,
        fwd: 96,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "paypal_secret",
        trigger: kw_fold(&["paypal"]),
        pattern: concat!(
            r"(?i)paypal[a-z0-9_. -]{0,24}(?:secret|token|key)[a-z0-9_]{0,12}",
            assign!(),
            r"(?P<s>[A-Za-z0-9_-]{40,})"
        ),
        back: 0,
        fwd: 160,
        bound: Bound::Token,
        check: Check::Token {
            min_len: 40,
            bits: 3.5,
            hex_ok: false,
        },
        priority: CONTEXT,
    },
    // ---- messaging and e-mail APIs
    RuleDef {
        kind: "twilio_key",
        trigger: kw(&["SK"]),
        pattern: r"SK[0-9a-f]{32}",
        back: 0,
        fwd: 34,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "twilio_key",
        trigger: kw_fold(&["twilio"]),
        pattern: concat!(
            r"(?i)twilio[a-z0-9_. -]{0,30}(?:token|secret|key|auth)[a-z0-9_]{0,12}",
            assign!(),
            r"(?P<s>[a-f0-9]{32})"
        ),
        back: 0,
        fwd: 120,
        bound: Bound::Token,
        check: Check::Plain,
        priority: CONTEXT,
    },
    RuleDef {
        kind: "sendgrid_key",
        trigger: kw(&["SG."]),
        pattern: r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
        back: 0,
        fwd: 72,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "mailgun_key",
        trigger: kw(&["key-"]),
        pattern: r"key-[0-9a-f]{32}",
        back: 0,
        fwd: 36,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "mailgun_key",
        trigger: kw_fold(&["mailgun"]),
        pattern: r"(?P<s>[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})",
        back: 0,
        fwd: 160,
        bound: Bound::Token,
        check: Check::Plain,
        priority: CONTEXT,
    },
    RuleDef {
        kind: "shopify_token",
        trigger: kw(&["shpat_", "shpca_", "shppa_", "shpss_"]),
        pattern: r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
        back: 0,
        fwd: 40,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    // ---- AI providers
    RuleDef {
        kind: "openai_key",
        trigger: kw(&["sk-"]),
        pattern: r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|sk-[A-Za-z0-9]{48}",
        back: 0,
        fwd: 260,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "anthropic_key",
        trigger: kw(&["sk-ant-"]),
        pattern: r"sk-ant-(?:api|admin|sid)[0-9]{2}-[A-Za-z0-9_-]{80,}",
        back: 0,
        fwd: 140,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC + 1,
    },
    RuleDef {
        kind: "huggingface_token",
        trigger: kw(&["hf_", "api_org_"]),
        pattern: r"(?:hf|api_org)_[A-Za-z0-9]{34}",
        back: 0,
        fwd: 44,
        bound: Bound::Glued,
        check: Check::Token {
            min_len: 34,
            bits: 3.5,
            hex_ok: false,
        },
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "cohere_key",
        trigger: kw_fold(&["cohere", "co_api_key"]),
        pattern: concat!(
            r"(?i)(?:cohere|co_api)[a-z0-9_. -]{0,24}",
            assign!(),
            r"(?P<s>[A-Za-z0-9]{40})"
        ),
        back: 0,
        fwd: 120,
        bound: Bound::Token,
        check: Check::Token {
            min_len: 40,
            bits: 4.0,
            hex_ok: false,
        },
        priority: CONTEXT,
    },
    // ---- package registries
    RuleDef {
        kind: "npm_token",
        trigger: kw(&["npm_"]),
        pattern: r"npm_[A-Za-z0-9]{36}",
        back: 0,
        fwd: 40,
        bound: Bound::Glued,
        check: Check::Token {
            min_len: 36,
            bits: 3.5,
            hex_ok: false,
        },
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "pypi_token",
        trigger: kw(&["pypi-AgEIcHlwaS5vcmc"]),
        pattern: r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",
        back: 0,
        fwd: 320,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "docker_token",
        trigger: kw(&["dckr_pat_", "dckr_oat_"]),
        pattern: r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}",
        back: 0,
        fwd: 76,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    // ---- generic structures
    RuleDef {
        kind: "jwt",
        trigger: kw(&["eyJ"]),
        pattern: r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        back: 0,
        fwd: 8 * 1024,
        bound: Bound::Glued,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "connection_password",
        trigger: kw(&["://"]),
        pattern: r#"[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/?#@"'<>\[\]]+:(?P<s>[^\s@/"'<>]+)@[A-Za-z0-9\[]"#,
        back: 24,
        fwd: 600,
        bound: Bound::Free,
        check: Check::UriPassword,
        priority: CONTEXT,
    },
    RuleDef {
        kind: "authorization",
        trigger: kw_fold(&["authorization"]),
        pattern: concat!(
            r"(?i)authorization",
            assign!(),
            r"(?:bearer|basic|token|bot|digest|apikey|key|sso-key)?\s*(?P<s>[A-Za-z0-9._~+/:=-]{8,})"
        ),
        back: 0,
        fwd: 4200,
        bound: Bound::Free,
        check: Check::Token {
            min_len: 8,
            bits: 2.5,
            hex_ok: true,
        },
        priority: HEADER,
    },
    RuleDef {
        kind: "bearer_token",
        trigger: kw_fold(&["bearer "]),
        pattern: r"(?i)bearer\s+(?P<s>[A-Za-z0-9._~+/-]{12,}=*)",
        back: 0,
        fwd: 4200,
        bound: Bound::Free,
        check: Check::Token {
            min_len: 12,
            bits: 3.0,
            hex_ok: true,
        },
        priority: HEADER,
    },
    RuleDef {
        kind: "basic_auth",
        trigger: kw_fold(&["basic "]),
        pattern: r"(?i)basic\s+(?P<s>[A-Za-z0-9+/]{6,}={0,2})",
        back: 0,
        fwd: 1100,
        bound: Bound::Free,
        check: Check::BasicAuth,
        priority: HEADER,
    },
    RuleDef {
        kind: "secret_assignment",
        trigger: kw_fold(SECRET_WORDS),
        pattern: concat!(
            r"(?i)[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|private[_-]?key|credentials?|passphrase)[a-z0-9_.-]*",
            assign!(),
            r#"(?P<s>[^\s"'`,;&|<>(){}\[\]\\]{6,})"#
        ),
        back: 40,
        fwd: 400,
        bound: Bound::Free,
        check: Check::Assignment,
        priority: GENERIC,
    },
    RuleDef {
        // The same labels with a quoted value: the whole quoted string, spaces included
        // (`PGPASSWORD='my pass phrase'`, `\"password\": \"…\"`).
        kind: "secret_assignment",
        trigger: kw_fold(SECRET_WORDS),
        pattern: concat!(
            r"(?i)[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|private[_-]?key|credentials?|passphrase)[a-z0-9_.-]*",
            r#"(?:\\*["'])?\s*(?:=|:|:=|=>|->)\s*\$?\\*["'](?P<s>[^"'\\\r\n]{1,256})"#
        ),
        back: 40,
        fwd: 700,
        bound: Bound::Free,
        check: Check::QuotedAssignment,
        priority: GENERIC + 1,
    },
    // ---- command lines
    RuleDef {
        // MySQL and MariaDB take the password glued to `-p` (`-p` alone prompts for it).
        kind: "cli_password",
        trigger: kw(&["mysql", "mariadb"]),
        pattern: r#"(?:mysql(?:dump|admin|sh|import|binlog)?|mariadb(?:-dump|-admin)?)\b(?:[^\n|;&\\]|\\\r?\n|\\[^\n]){0,200}?\s-p(?P<s>'[^'\r\n]{1,256}'|"[^"\r\n]{1,256}"|[^\s'"|;&]{1,256})"#,
        back: 0,
        fwd: 500,
        bound: Bound::Free,
        check: Check::CommandLine,
        priority: CONTEXT,
    },
    RuleDef {
        // `sshpass -p …`, `docker login -p …`, `redis-cli -a …`.
        kind: "cli_password",
        trigger: kw(&["sshpass", "login", "redis-cli"]),
        pattern: r#"(?:sshpass|(?:docker|podman|buildah|skopeo|nerdctl|oras|helm registry) login|redis-cli)\b(?:[^\n|;&\\]|\\\r?\n|\\[^\n]){0,200}?\s(?:-p|-a|--pass(?:word)?)(?:[ \t]+|=)(?P<s>'[^'\r\n]{1,256}'|"[^"\r\n]{1,256}"|[^\s'"|;&]{1,256})"#,
        back: 24,
        fwd: 500,
        bound: Bound::Free,
        check: Check::CommandLine,
        priority: CONTEXT,
    },
    RuleDef {
        // `--password value`, `--db-password 'a b'`, `--api-token=…` (the `=` form is also an
        // assignment; this one takes the space form and quoted values).
        kind: "cli_password",
        trigger: kw(&[
            "-password",
            "-passwd",
            "-passphrase",
            "-secret",
            "-token",
            "-api-key",
            "-apikey",
        ]),
        pattern: r#"--[a-z0-9-]{0,30}(?:password|passwd|passphrase|secret|token|api-key|apikey)(?:[ \t]+|=|[ \t]*\\\r?\n[ \t]*)(?P<s>'[^'\r\n]{1,256}'|"[^"\r\n]{1,256}"|[^\s'"|;&\\]{1,256})"#,
        back: 34,
        fwd: 320,
        bound: Bound::Free,
        check: Check::CommandLine,
        priority: CONTEXT,
    },
    RuleDef {
        // `curl -u 'id:secret'`, `--user id:secret`, `http --auth id:secret`: the part after
        // the colon.
        kind: "cli_password",
        trigger: kw(&["-u ", "-u\t", "-u'", "-u\"", "--user", "--auth"]),
        pattern: r#"(?:\s-u|--user|--auth)(?:[ \t]+|=)?['"][^\s:'"]{1,128}:(?P<s>[^'"\r\n]{1,256})['"]"#,
        back: 1,
        fwd: 420,
        bound: Bound::Free,
        check: Check::CommandLine,
        priority: CONTEXT,
    },
    RuleDef {
        kind: "cli_password",
        trigger: kw(&["-u ", "-u\t", "-u'", "-u\"", "--user", "--auth"]),
        pattern: r#"(?:\s-u|--user|--auth)(?:[ \t]+|=)?[^\s:'"]{1,128}:(?P<s>[^\s'"]{1,256})"#,
        back: 1,
        fwd: 420,
        bound: Bound::Free,
        check: Check::CommandLine,
        priority: CONTEXT,
    },
    // ---- base64-wrapped credentials
    RuleDef {
        // SMTP `AUTH PLAIN <base64>` (RFC 4954, RFC 4616), also with the credentials on the
        // line after the server's `334`.
        kind: "smtp_auth",
        trigger: kw_fold(&["auth plain"]),
        pattern: r"(?i)auth\s+plain\s+(?:(?:[sc]:\s*)?334[^\r\n]*\r?\n\s*(?:c:\s*)?)?(?P<s>[A-Za-z0-9+/]{4,}={0,2})",
        back: 0,
        fwd: 1100,
        bound: Bound::Free,
        check: Check::SmtpPlain,
        priority: HEADER,
    },
    RuleDef {
        // SMTP `AUTH LOGIN`: the line after the server's `334 UGFzc3dvcmQ6` ("Password:").
        kind: "smtp_auth",
        trigger: kw(&["UGFzc3dvcmQ6"]),
        pattern: r"UGFzc3dvcmQ6[^\r\n]*\r?\n\s*(?:[Cc]:\s*)?(?P<s>[A-Za-z0-9+/]{2,}={0,2})",
        back: 0,
        fwd: 1100,
        bound: Bound::Free,
        check: Check::Plain,
        priority: HEADER,
    },
    RuleDef {
        // A Docker config's `"auth": "<base64 of user:password>"` (also escaped in JSON text).
        kind: "basic_auth",
        trigger: kw(&["auth\"", "auth\\\""]),
        pattern: r#"auth\\*"\s*:\s*\\*"(?P<s>[A-Za-z0-9+/]{4,}={0,2})\\*""#,
        back: 0,
        fwd: 1100,
        bound: Bound::Free,
        check: Check::BasicAuth,
        priority: HEADER,
    },
    RuleDef {
        // A Kubernetes Secret's `data:` in YAML: each value decoded and scanned again.
        kind: "encoded_secret",
        trigger: kw(&["data:"]),
        pattern: r#"(?m)^[ \t]+["']?(?P<k>[A-Za-z0-9._-]{1,253})["']?:[ \t]+["']?(?P<s>[A-Za-z0-9+/]{4,}={0,2})["']?[ \t]*\r?$"#,
        back: 0,
        fwd: super::MAX_DECODED_VALUE + 512,
        bound: Bound::Free,
        check: Check::Decode,
        priority: CONTEXT,
    },
    RuleDef {
        // The same in JSON (`kubectl get secret -o json`), also escaped inside a JSON string.
        kind: "encoded_secret",
        trigger: kw(&["\"data\"", "data\\\""]),
        pattern: r#"\\*"(?P<k>[A-Za-z0-9._-]{1,253})\\*"\s*:\s*\\*"(?P<s>[A-Za-z0-9+/]{4,}={0,2})\\*""#,
        back: 0,
        fwd: super::MAX_DECODED_VALUE + 512,
        bound: Bound::Free,
        check: Check::Decode,
        priority: CONTEXT,
    },
    RuleDef {
        // Credentials in a query string under short names (`?auth=…`, `&pass=…`).
        kind: "query_secret",
        trigger: kw(&[
            "auth=",
            "pass=",
            "pw=",
            "key=",
            "sig=",
            "code=",
            "signature=",
        ]),
        pattern: r"[?&;](?:auth|pass|pw|key|sig|code|signature)=(?P<s>[A-Za-z0-9._~%+/-]{6,512})",
        back: 10,
        fwd: 520,
        bound: Bound::Free,
        check: Check::QueryToken,
        priority: GENERIC,
    },
    // ---- personal data
    RuleDef {
        kind: "email",
        trigger: kw(&["@"]),
        pattern: r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
        back: 64,
        fwd: 260,
        bound: Bound::Free,
        check: Check::Email,
        priority: PERSONAL,
    },
    RuleDef {
        kind: "phone",
        trigger: Trigger::Digits(8),
        pattern: r"\+[1-9](?:[ .()-]{0,2}[0-9]){7,14}|(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .-]?[2-9][0-9]{2}[ .-][0-9]{4}",
        back: 8,
        fwd: 0,
        bound: Bound::Free,
        check: Check::Phone,
        priority: PERSONAL,
    },
    RuleDef {
        kind: "card_number",
        trigger: Trigger::Digits(8),
        pattern: r"[0-9](?:[ -]?[0-9]){12,18}",
        back: 0,
        fwd: 0,
        bound: Bound::Free,
        check: Check::Card,
        priority: PERSONAL + 1,
    },
    RuleDef {
        kind: "us_ssn",
        trigger: Trigger::Digits(8),
        pattern: r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        back: 0,
        fwd: 0,
        bound: Bound::Free,
        check: Check::Ssn,
        priority: PERSONAL + 1,
    },
    RuleDef {
        kind: "iban",
        trigger: Trigger::CountryDigits,
        pattern: r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?",
        back: 0,
        fwd: 48,
        bound: Bound::Free,
        check: Check::Iban,
        priority: PERSONAL + 2,
    },
    RuleDef {
        // National form with a trunk `0` (`020 7946 0958`, `030/12345678`, `06-12345678`) and
        // international with `00` (`0044 20 7946 0958`).
        kind: "phone",
        trigger: Trigger::Digits(9),
        pattern: r"00[1-9](?:[ .()/-]{0,2}[0-9]){8,14}|(?:\(0[1-9][0-9]{0,4}\)|0[1-9][0-9]{0,4})(?:[ ./-]{0,2}[0-9]{2,8}){1,5}",
        back: 2,
        fwd: 0,
        bound: Bound::Free,
        check: Check::NationalPhone,
        priority: PERSONAL,
    },
    RuleDef {
        // A US SSN without dashes (or with spaces), after its label.
        kind: "us_ssn",
        trigger: kw_fold(&["ssn", "social security", "Social Security"]),
        pattern: r#"(?i)(?:ssn|social security)(?:\s*(?:number|no\.?|#))?[\s:=#"'\\]{0,8}(?P<s>[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{4})"#,
        back: 0,
        fwd: 64,
        bound: Bound::Free,
        check: Check::SsnLabelled,
        priority: PERSONAL + 1,
    },
    RuleDef {
        kind: "uk_nino",
        trigger: Trigger::CountryDigits,
        pattern: r"[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]",
        back: 0,
        fwd: 16,
        bound: Bound::Free,
        check: Check::Nino,
        priority: PERSONAL + 2,
    },
    RuleDef {
        kind: "in_aadhaar",
        trigger: Trigger::Digits(12),
        pattern: r"[2-9][0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}",
        back: 0,
        fwd: 0,
        bound: Bound::Free,
        check: Check::Aadhaar,
        priority: PERSONAL + 1,
    },
    RuleDef {
        kind: "de_tax_id",
        trigger: Trigger::Digits(11),
        pattern: r"[1-9][0-9](?: ?[0-9]{3}){3}",
        back: 0,
        fwd: 0,
        bound: Bound::Free,
        check: Check::SteuerId,
        priority: PERSONAL + 1,
    },
    RuleDef {
        // DNI: 8 digits and a letter; NIE: X, Y or Z, 7 digits and a letter.
        kind: "es_dni",
        trigger: Trigger::Digits(7),
        pattern: r"[XYZ]-?[0-9]{7}-?[A-Z]|[0-9]{8}-?[A-Z]",
        back: 2,
        fwd: 2,
        bound: Bound::Free,
        check: Check::DniNie,
        priority: PERSONAL + 2,
    },
    RuleDef {
        // A BSN is any 9 digits to the eye: only after its label.
        kind: "nl_bsn",
        trigger: kw_fold(&["bsn", "burgerservicenummer", "sofinummer", "sofi-nummer"]),
        pattern: r"(?i)(?:bsn|burgerservicenummer|sofi-?nummer)[^0-9\r\n]{0,24}(?P<s>[0-9]{4}\.[0-9]{2}\.[0-9]{3}|[0-9]{3}[ .][0-9]{3}[ .][0-9]{3}|[0-9]{8,9})",
        back: 0,
        fwd: 64,
        bound: Bound::Free,
        check: Check::Bsn,
        priority: PERSONAL + 1,
    },
];

/// The labels of `key = value` secrets.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "apiKey",
    "access_key",
    "accessKey",
    "auth_key",
    "private_key",
    "privateKey",
    "credential",
    "passphrase",
];

/// JSON member names whose values are secrets whatever they look like. Compared after
/// lower-casing and dropping `_`, `-` and `.`; a name matches when it ends with one of these.
pub(crate) const SECRET_FIELD_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "signingkey",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "pwd",
    "ssn",
    "cvv",
    "cvc",
    "pin",
];
