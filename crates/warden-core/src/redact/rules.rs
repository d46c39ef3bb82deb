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
    /// A run of digits (see `Engine::digit_windows`).
    Digits,
    /// Two upper-case letters then two digits (an IBAN's country and check digits).
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
    /// The redacted part must not sit inside a longer token (`[A-Za-z0-9_+/-]` on both sides).
    pub bounded: bool,
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

/// An assignment operator between a key and its value, with optional quotes.
macro_rules! assign {
    () => {
        r#"["']?\s*(?:=|:|:=|=>|->)\s*["']?"#
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
        bounded: false,
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
        bounded: true,
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
        bounded: true,
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
        bounded: true,
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
        bounded: true,
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
        bounded: false,
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
        bounded: false,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "azure_storage_key",
        trigger: kw_fold(&["accountkey", "AccountKey", "SharedAccessKey"]),
        pattern: r"(?i)(?:account|sharedaccess)key\s*=\s*(?P<s>[A-Za-z0-9+/]{40,}={0,2})",
        back: 0,
        fwd: 140,
        bounded: false,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "azure_sas_signature",
        trigger: kw(&["sig="]),
        pattern: r"sig=(?P<s>[A-Za-z0-9%+/]{40,}(?:%3D|=){0,2})",
        back: 0,
        fwd: 130,
        bounded: false,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "github_token",
        trigger: kw(&["github_pat_"]),
        pattern: r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        back: 0,
        fwd: 96,
        bounded: true,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "bitbucket_app_password",
        trigger: kw(&["ATBB"]),
        pattern: r"ATBB[A-Za-z0-9_=.-]{32,}",
        back: 0,
        fwd: 72,
        bounded: true,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "slack_webhook",
        trigger: kw(&["hooks.slack.com"]),
        pattern: r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
        back: 8,
        fwd: 220,
        bounded: false,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "discord_webhook",
        trigger: kw(&["discord.com/api/webhooks", "discordapp.com/api/webhooks"]),
        pattern: r"https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{15,20}/[A-Za-z0-9_-]{60,70}",
        back: 20,
        fwd: 130,
        bounded: false,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "discord_bot_token",
        trigger: kw_fold(&["discord", "Bot "]),
        pattern: r"(?P<s>[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40})",
        back: 0,
        fwd: 200,
        bounded: true,
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
        bounded: false,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "square_token",
        trigger: kw(&["sq0atp-", "sq0csp-", "EAAA"]),
        pattern: r"sq0atp-[0-9A-Za-z_-]{22}|sq0csp-[0-9A-Za-z_-]{43}|EAAA[A-Za-z0-9_-]{60}",
        back: 0,
        fwd: 70,
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "braintree_token",
        trigger: kw(&["access_token$production$", "access_token$sandbox$"]),
        pattern: r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}",
        back: 0,
        fwd: 96,
        bounded: true,
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
        bounded: true,
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
        bounded: true,
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
        bounded: true,
        check: Check::Plain,
        priority: CONTEXT,
    },
    RuleDef {
        kind: "sendgrid_key",
        trigger: kw(&["SG."]),
        pattern: r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
        back: 0,
        fwd: 72,
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "mailgun_key",
        trigger: kw(&["key-"]),
        pattern: r"key-[0-9a-f]{32}",
        back: 0,
        fwd: 36,
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "mailgun_key",
        trigger: kw_fold(&["mailgun"]),
        pattern: r"(?P<s>[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})",
        back: 0,
        fwd: 160,
        bounded: true,
        check: Check::Plain,
        priority: CONTEXT,
    },
    RuleDef {
        kind: "shopify_token",
        trigger: kw(&["shpat_", "shpca_", "shppa_", "shpss_"]),
        pattern: r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
        back: 0,
        fwd: 40,
        bounded: true,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "anthropic_key",
        trigger: kw(&["sk-ant-"]),
        pattern: r"sk-ant-(?:api|admin|sid)[0-9]{2}-[A-Za-z0-9_-]{80,}",
        back: 0,
        fwd: 140,
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC + 1,
    },
    RuleDef {
        kind: "huggingface_token",
        trigger: kw(&["hf_", "api_org_"]),
        pattern: r"(?:hf|api_org)_[A-Za-z0-9]{34}",
        back: 0,
        fwd: 44,
        bounded: true,
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
        bounded: true,
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
        bounded: true,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "docker_token",
        trigger: kw(&["dckr_pat_", "dckr_oat_"]),
        pattern: r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}",
        back: 0,
        fwd: 76,
        bounded: true,
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
        bounded: true,
        check: Check::Plain,
        priority: SPECIFIC,
    },
    RuleDef {
        kind: "connection_password",
        trigger: kw(&["://"]),
        pattern: r#"[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/?#@"'<>\[\]]+:(?P<s>[^\s@/"'<>]+)@[A-Za-z0-9\[]"#,
        back: 24,
        fwd: 600,
        bounded: false,
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
        bounded: false,
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
        bounded: false,
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
        bounded: false,
        check: Check::BasicAuth,
        priority: HEADER,
    },
    RuleDef {
        kind: "secret_assignment",
        trigger: kw_fold(&[
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
        ]),
        pattern: concat!(
            r"(?i)[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|private[_-]?key|credentials?|passphrase)[a-z0-9_.-]*",
            assign!(),
            r#"(?P<s>[^\s"'`,;&|<>(){}\[\]\\]{6,})"#
        ),
        back: 40,
        fwd: 400,
        bounded: false,
        check: Check::Assignment,
        priority: GENERIC,
    },
    // ---- personal data
    RuleDef {
        kind: "email",
        trigger: kw(&["@"]),
        pattern: r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
        back: 64,
        fwd: 260,
        bounded: false,
        check: Check::Email,
        priority: PERSONAL,
    },
    RuleDef {
        kind: "phone",
        trigger: Trigger::Digits,
        pattern: r"\+[1-9](?:[ .()-]{0,2}[0-9]){7,14}|(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .-]?[2-9][0-9]{2}[ .-][0-9]{4}",
        back: 8,
        fwd: 0,
        bounded: false,
        check: Check::Phone,
        priority: PERSONAL,
    },
    RuleDef {
        kind: "card_number",
        trigger: Trigger::Digits,
        pattern: r"[0-9](?:[ -]?[0-9]){12,18}",
        back: 0,
        fwd: 0,
        bounded: false,
        check: Check::Card,
        priority: PERSONAL + 1,
    },
    RuleDef {
        kind: "us_ssn",
        trigger: Trigger::Digits,
        pattern: r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        back: 0,
        fwd: 0,
        bounded: false,
        check: Check::Ssn,
        priority: PERSONAL + 1,
    },
    RuleDef {
        kind: "iban",
        trigger: Trigger::CountryDigits,
        pattern: r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?",
        back: 0,
        fwd: 48,
        bounded: false,
        check: Check::Iban,
        priority: PERSONAL + 2,
    },
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
