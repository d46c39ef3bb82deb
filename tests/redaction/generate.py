#!/usr/bin/env python3
"""Generate the planted-secret corpus for Warden's redaction engine.

Every secret here is synthetic: random characters in the published format of its family
(prefixes and lengths as catalogued by gitleaks/trufflehog), never a real credential. Decoys are
look-alikes that must be kept: git SHAs, UUIDs, Luhn-invalid card numbers, public keys, hashes,
base64 image data, version strings, order ids, placeholders.

Output: corpus.jsonl, one document per line:
  {"id": "...", "family": "...", "format": "log|json|env|email|code|yaml|chat|shell",
   "text": "...", "planted": [{"kind": "...", "value": "...", "form": "...", "parts": [...]}],
   "decoys": [...]}
`form` says how the value is written (plain, glued, wrapped, base64, urlencoded, json_escaped,
shell, passphrase, national_phone, national_id, env_dump); `parts` are the pieces of the value
as they appear in the text (one piece unless a wrapper split it or it has several words). A
value is found only when none of its parts is left; a decoy is kept when it is still verbatim.

Run: python3 tests/redaction/generate.py   (deterministic: fixed seed)
"""
import base64
import json
import os
import random
import string

R = random.Random(20261126)
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
UPPER32 = string.ascii_uppercase + "234567"


def rs(alphabet, n):
    return "".join(R.choice(alphabet) for _ in range(n))


def luhn_digit(partial):
    s = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return str((10 - s % 10) % 10)


def card(prefix, length):
    body = prefix + "".join(R.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return body + luhn_digit(body)


def group(num, sep):
    if len(num) == 15:
        parts = [num[:4], num[4:10], num[10:]]
    else:
        parts = [num[i:i + 4] for i in range(0, len(num), 4)]
    return sep.join(parts)


def iban(country, bban):
    moved = bban + country + "00"
    n = int("".join(str(int(c, 36)) for c in moved))
    check = 98 - n % 97
    return f"{country}{check:02d}{bban}"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


FIRST = ["ada", "grace", "linus", "margaret", "alan", "barbara", "dennis", "frances", "ken", "radia",
         "john", "maria", "wei", "fatima", "olu", "sven", "priya", "carlos", "yuki", "noor"]
LAST = ["lovelace", "hopper", "hamilton", "turing", "liskov", "ritchie", "allen", "thompson",
        "perlman", "smith", "garcia", "chen", "haddad", "okafor", "larsen", "sharma", "silva"]
DOMAINS = ["example.com", "acme-corp.io", "mail.example.org", "contoso.co.uk", "globex.de",
           "initech.net", "umbrella.fr", "hooli.xyz"]

LOG_PRE = [
    "2026-11-25T10:{m:02d}:{s:02d}.{ms:03d}Z INFO  worker[{pid}] job started queue=default attempt=1",
    "2026-11-25T10:{m:02d}:{s:02d}.{ms:03d}Z DEBUG http request GET /api/v2/orders?page={pid} 200 in 18ms",
    "2026-11-25T10:{m:02d}:{s:02d}.{ms:03d}Z WARN  retrying upstream call (attempt 2 of 5) after 250ms",
    "2026-11-25T10:{m:02d}:{s:02d}.{ms:03d}Z INFO  cache hit ratio 0.93 over the last 60s",
]


def filler_log():
    return R.choice(LOG_PRE).format(m=R.randint(0, 59), s=R.randint(0, 59), ms=R.randint(0, 999),
                                    pid=R.randint(100, 9999))


def person():
    return R.choice(FIRST), R.choice(LAST)


def email_addr():
    f, l = person()
    sep = R.choice([".", "_", "", "+ops."])
    return f"{f}{sep}{l}@{R.choice(DOMAINS)}"


# ---- generators: each returns (value, context line with {v}) ----------------------------------

def g_aws_id():
    return "AKIA" + rs(UPPER32, 16)


def g_aws_secret():
    return rs(B64, 40)


def g_gcp_api():
    return "AIza" + rs(B64URL, 35)


def pem_body(lines=12):
    return [rs(B64, 64) for _ in range(lines)]


def g_azure_key():
    return rs(B64, 86) + "=="


def g_azure_client_secret():
    return rs(ALNUM, 3) + str(R.randint(0, 9)) + "Q~" + rs(ALNUM + "_.-", 34)


def g_github():
    kind = R.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"])
    if kind == "github_pat_":
        return "github_pat_" + rs(ALNUM, 22) + "_" + rs(ALNUM, 59)
    return kind + rs(ALNUM, 36)


def g_gitlab():
    return R.choice(["glpat-", "glpat-", "gldt-", "glrt-"]) + rs(ALNUM + "_-", 20)


def g_bitbucket():
    return "ATBB" + rs(ALNUM, 32)


def g_slack():
    k = R.choice(["bot", "user", "app"])
    if k == "bot":
        return f"xoxb-{rs(string.digits, 12)}-{rs(string.digits, 13)}-{rs(ALNUM, 24)}"
    if k == "user":
        return f"xoxp-{rs(string.digits, 12)}-{rs(string.digits, 12)}-{rs(string.digits, 13)}-{rs(HEX, 32)}"
    return f"xapp-1-A{rs(string.ascii_uppercase + string.digits, 10)}-{rs(string.digits, 13)}-{rs(HEX, 64)}"


def g_slack_webhook():
    return f"https://hooks.slack.com/services/T{rs(string.ascii_uppercase + string.digits, 9)}/B{rs(string.ascii_uppercase + string.digits, 10)}/{rs(ALNUM, 24)}"


def g_discord_webhook():
    return f"https://discord.com/api/webhooks/{rs(string.digits, 18)}/{rs(B64URL, 68)}"


def g_discord_bot():
    uid = str(R.randint(10**17, 10**18 - 1)).encode()
    return b64url(uid) + "." + rs(B64URL, 6) + "." + rs(B64URL, 27)


def g_telegram():
    return f"{R.randint(10**8, 10**10 - 1)}:AA{rs(B64URL, 33)}"


def g_stripe():
    p = R.choice(["sk_live_", "sk_test_", "rk_live_", "sk_live_"])
    return p + rs(ALNUM, R.choice([24, 99]))


def g_square():
    return R.choice([lambda: "sq0atp-" + rs(B64URL, 22), lambda: "sq0csp-" + rs(B64URL, 43),
                     lambda: "EAAA" + rs(B64URL, 60)])()


def g_braintree():
    return f"access_token$production${rs(string.digits + string.ascii_lowercase, 16)}${rs(HEX, 32)}"


def g_twilio():
    return "SK" + rs(HEX, 32)


def g_sendgrid():
    return f"SG.{rs(B64URL, 22)}.{rs(B64URL, 43)}"


def g_mailgun():
    return "key-" + rs(HEX, 32)


def g_shopify():
    return R.choice(["shpat_", "shpss_", "shpca_"]) + rs(HEX, 32)


def g_openai():
    if R.random() < 0.6:
        return "sk-proj-" + rs(B64URL, 74) + "T3BlbkFJ" + rs(B64URL, 74)
    return "sk-" + rs(ALNUM, 20) + "T3BlbkFJ" + rs(ALNUM, 20)


def g_anthropic():
    return "sk-ant-api03-" + rs(B64URL, 93) + "AA"


def g_hf():
    return "hf_" + rs(string.ascii_letters, 34)


def g_cohere():
    return rs(ALNUM, 40)


def g_npm():
    return "npm_" + rs(ALNUM, 36)


def g_pypi():
    return "pypi-AgEIcHlwaS5vcmc" + rs(B64URL, 70)


def g_docker():
    return "dckr_pat_" + rs(B64URL, 27)


def g_jwt():
    header = b64url(json.dumps({"alg": R.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": rs(HEX, 12), "iat": R.randint(1.7e9, 1.8e9),
                                 "scope": "orders:read"}).encode())
    return f"{header}.{payload}.{b64url(bytes(R.randrange(256) for _ in range(32)))}"


def g_password():
    return rs(ALNUM + "!#%^*_", R.randint(12, 22))


def g_bearer():
    return rs(ALNUM + "._-", R.randint(32, 64))


def g_generic():
    return rs(ALNUM, R.randint(20, 40))


def g_phone():
    k = R.choice(["e164", "e164sp", "nanp", "nanp2"])
    if k == "e164":
        return "+" + R.choice(["44", "49", "33", "31", "34"]) + rs(string.digits, 10)
    if k == "e164sp":
        return f"+44 20 {rs(string.digits, 4)} {rs(string.digits, 4)}"
    if k == "nanp":
        return f"({R.randint(201, 989)}) {R.randint(201, 989)}-{rs(string.digits, 4)}"
    return f"{R.randint(201, 989)}-{R.randint(201, 989)}-{rs(string.digits, 4)}"


def g_card():
    p, n = R.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                     ("6011", 16), ("35", 16)])
    num = card(p, n)
    return R.choice([num, group(num, " "), group(num, "-")])


def g_iban():
    c, fmt = R.choice([("DE", "d18"), ("GB", "GB"), ("FR", "d23"), ("NL", "NL"), ("ES", "d20"),
                       ("IT", "IT")])
    if fmt == "GB":
        bban = rs(string.ascii_uppercase, 4) + rs(string.digits, 14)
    elif fmt == "NL":
        bban = rs(string.ascii_uppercase, 4) + rs(string.digits, 10)
    elif fmt == "IT":
        bban = R.choice(string.ascii_uppercase) + rs(string.digits, 10) + rs(string.digits, 12)
    else:
        bban = rs(string.digits, int(fmt[1:]))
    v = iban(c, bban)
    if R.random() < 0.5:
        v = " ".join(v[i:i + 4] for i in range(0, len(v), 4))
    return v


def g_ssn():
    while True:
        a = R.randint(1, 899)
        if a != 666:
            break
    return f"{a:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"


# ---- documents -----------------------------------------------------------------------------------

docs = []


def entry(item, default_form):
    kind, value = item[0], item[1]
    form = item[2] if len(item) > 2 else default_form
    parts = item[3] if len(item) > 3 else [value]
    return {"kind": kind, "value": value, "form": form, "parts": parts}


def doc(family, fmt, lines, planted=(), decoys=(), form="plain"):
    text = "\n".join(lines) + "\n"
    planted = [entry(p, form) for p in planted]
    decoys = [entry(d, "decoy") for d in decoys]
    for e in planted + decoys:
        for part in e["parts"]:
            assert part in text, (family, part, text)
    docs.append({
        "id": f"{family}-{len(docs):04d}",
        "family": family,
        "format": fmt,
        "text": text,
        "planted": planted,
        "decoys": decoys,
    })


def contexts(family, value, templates):
    """One document per template, each wrapping `value` in realistic surrounding text."""
    t = R.choice(templates)
    fmt, lines = t(value)
    return fmt, lines


def log_ctx(line):
    return lambda v: ("log", [filler_log(), line.format(v=v), filler_log()])


def env_ctx(name):
    return lambda v: ("env", ["# service configuration", "APP_ENV=production", "LOG_LEVEL=info",
                              f"{name}={v}", "PORT=8080"])


def json_ctx(key):
    return lambda v: ("json", ["{", '  "service": "billing-sync",', '  "region": "eu-west-1",',
                               f'  "{key}": "{v}",', '  "retries": 3', "}"])


def yaml_ctx(key):
    return lambda v: ("yaml", ["integrations:", "  enabled: true", f"  {key}: {v}", "  timeout_s: 30"])


def code_ctx(var):
    return lambda v: ("code", ["import os", "", "def client():", f'    {var} = "{v}"',
                               "    return Client(key=" + var + ", timeout=10)"])


def mail_ctx(lead):
    return lambda v: ("email", ["From: Ops Team <ops@globex.de>", "Subject: access for the migration",
                                "", "Hi,", "", f"{lead} {v}", "", "Thanks,", "Ops"])


FAMILIES = {
    "aws_access_key_id": (g_aws_id, [env_ctx("AWS_ACCESS_KEY_ID"), json_ctx("AccessKeyId"),
                                     log_ctx("assumed credentials access_key={v} for role deploy"),
                                     mail_ctx("The key id is")]),
    "aws_secret_access_key": (g_aws_secret, [env_ctx("AWS_SECRET_ACCESS_KEY"),
                                             json_ctx("SecretAccessKey"),
                                             yaml_ctx("aws_secret_access_key")]),
    "gcp_api_key": (g_gcp_api, [log_ctx("GET https://maps.googleapis.com/maps/api/geocode/json?key={v}&address=x"),
                                env_ctx("GOOGLE_API_KEY"), code_ctx("maps_key")]),
    "azure_storage_key": (g_azure_key, [lambda v: ("env", ["# storage", f"AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={v};EndpointSuffix=core.windows.net"]),
                                        lambda v: ("log", [filler_log(), f'connecting with "AccountName=acme;AccountKey={v}"', filler_log()])]),
    "azure_client_secret": (g_azure_client_secret, [env_ctx("AZURE_CLIENT_SECRET"), json_ctx("clientSecret"),
                                                    log_ctx("token request client_id=6c1f client_secret={v}")]),
    "github_token": (g_github, [env_ctx("GITHUB_TOKEN"), log_ctx("git clone https://x-access-token:{v}@github.com/acme/api.git"),
                                code_ctx("gh_token"), mail_ctx("Use this token for the bot:")]),
    "gitlab_token": (g_gitlab, [env_ctx("GITLAB_TOKEN"), yaml_ctx("private_token"), log_ctx("PRIVATE-TOKEN: {v}")]),
    "bitbucket_app_password": (g_bitbucket, [env_ctx("BITBUCKET_APP_PASSWORD"), json_ctx("app_password")]),
    "slack_token": (g_slack, [env_ctx("SLACK_BOT_TOKEN"), json_ctx("token"), log_ctx("posting to #ops with {v}")]),
    "slack_webhook": (g_slack_webhook, [env_ctx("SLACK_WEBHOOK_URL"), log_ctx("alert sink configured: {v}")]),
    "discord_webhook": (g_discord_webhook, [json_ctx("webhook"), log_ctx("notify via {v}")]),
    "discord_bot_token": (g_discord_bot, [env_ctx("DISCORD_BOT_TOKEN"), log_ctx("discord gateway login with token {v}")]),
    "telegram_bot_token": (g_telegram, [env_ctx("TELEGRAM_BOT_TOKEN"), log_ctx("POST https://api.telegram.org/bot{v}/sendMessage 200")]),
    "stripe_key": (g_stripe, [env_ctx("STRIPE_SECRET_KEY"), code_ctx("stripe.api_key"), log_ctx("stripe client init key={v}")]),
    "square_token": (g_square, [env_ctx("SQUARE_ACCESS_TOKEN"), json_ctx("square_token")]),
    "braintree_token": (g_braintree, [env_ctx("BRAINTREE_ACCESS_TOKEN"), code_ctx("gateway_token")]),
    "twilio_key": (g_twilio, [env_ctx("TWILIO_API_KEY"), json_ctx("api_key_sid"), log_ctx("twilio auth with {v}")]),
    "sendgrid_key": (g_sendgrid, [env_ctx("SENDGRID_API_KEY"), code_ctx("sg_key")]),
    "mailgun_key": (g_mailgun, [env_ctx("MAILGUN_API_KEY"), log_ctx("mailgun send using api:{v}")]),
    "shopify_token": (g_shopify, [env_ctx("SHOPIFY_ACCESS_TOKEN"), log_ctx("X-Shopify-Access-Token: {v}")]),
    "openai_key": (g_openai, [env_ctx("OPENAI_API_KEY"), code_ctx("openai_key"), mail_ctx("Here is the key:")]),
    "anthropic_key": (g_anthropic, [env_ctx("ANTHROPIC_API_KEY"), json_ctx("apiKey"), log_ctx("x-api-key: {v}")]),
    "huggingface_token": (g_hf, [env_ctx("HF_TOKEN"), log_ctx("huggingface-cli login --token {v}")]),
    "cohere_key": (g_cohere, [env_ctx("COHERE_API_KEY"), yaml_ctx("cohere_api_key")]),
    "npm_token": (g_npm, [lambda v: ("env", ["registry=https://registry.npmjs.org/", f"//registry.npmjs.org/:_authToken={v}"]),
                          env_ctx("NPM_TOKEN")]),
    "pypi_token": (g_pypi, [lambda v: ("env", ["[pypi]", "username = __token__", f"password = {v}"]), env_ctx("TWINE_PASSWORD")]),
    "docker_token": (g_docker, [log_ctx("docker login -u acmebuild -p {v}"), env_ctx("DOCKERHUB_TOKEN")]),
    "jwt": (g_jwt, [log_ctx("Authorization: Bearer {v}"), json_ctx("id_token"), log_ctx("session restored from cookie sid={v}")]),
    "bearer_token": (g_bearer, [log_ctx("curl -H 'Authorization: Bearer {v}' https://api.acme.io/v1/me"),
                                lambda v: ("json", ["{", '  "headers": {', f'    "Authorization": "Bearer {v}",', '    "Accept": "application/json"', "  }", "}"])]),
    "connection_password": (g_password, [
        lambda v: ("env", ["# database", f"DATABASE_URL=postgres://billing:{v}@db.internal:5432/billing"]),
        lambda v: ("log", [filler_log(), f"connecting to mysql://root:{v}@10.0.3.7:3306/app", filler_log()]),
        lambda v: ("yaml", ["cache:", f"  url: redis://default:{v}@cache.internal:6379/0"]),
        lambda v: ("json", ["{", f'  "mongo": "mongodb+srv://app:{v}@cluster0.abcde.mongodb.net/prod",', '  "pool": 10', "}"]),
        lambda v: ("env", [f"AMQP_URL=amqps://worker:{v}@mq.internal:5671/vhost"]),
    ]),
    "secret_assignment": (g_generic, [env_ctx("DB_PASSWORD"), yaml_ctx("client_secret"), json_ctx("password"),
                                      code_ctx("api_secret"), log_ctx("login failed for user=admin password={v}")]),
    "email": (email_addr, [log_ctx("sent invoice to {v} (template=receipt)"), json_ctx("email"),
                           mail_ctx("Please add"), code_ctx("owner")]),
    "phone": (g_phone, [log_ctx("sms queued to {v} status=accepted"), json_ctx("phone"), mail_ctx("Call me on")]),
    "card_number": (g_card, [json_ctx("card_number"), log_ctx("charge declined for card {v} reason=insufficient_funds"),
                             mail_ctx("My card is")]),
    "iban": (g_iban, [json_ctx("iban"), mail_ctx("Please refund to IBAN"), log_ctx("payout created iban={v} amount=120.00")]),
    "us_ssn": (g_ssn, [json_ctx("ssn"), mail_ctx("My SSN is"), log_ctx("kyc check ssn={v} result=pass")]),
}

PER_FAMILY = 10
for family, (gen, templates) in FAMILIES.items():
    for i in range(PER_FAMILY):
        v = gen()
        fmt, lines = templates[i % len(templates)](v)
        doc(family, fmt, lines, planted=[(family, v)])

# Private keys: PEM (PKCS#8, RSA, EC), OpenSSH, and GCP service-account JSON.
for i in range(12):
    body = pem_body(R.randint(8, 20))
    label = R.choice(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    if i % 3 == 2:
        key = "-----BEGIN PRIVATE KEY-----\\n" + "\\n".join(body) + "\\n-----END PRIVATE KEY-----\\n"
        lines = ["{", '  "type": "service_account",', '  "project_id": "acme-prod-123",',
                 f'  "private_key_id": "{rs(HEX, 40)}",', f'  "private_key": "{key}",',
                 '  "client_email": "sync@acme-prod-123.iam.gserviceaccount.com"', "}"]
        doc("private_key", "json", lines, planted=[("private_key", body[0]), ("private_key", body[-1])])
    else:
        lines = ["# deploy key", f"-----BEGIN {label}-----"] + body + [f"-----END {label}-----"]
        doc("private_key", "code", lines, planted=[("private_key", body[0]), ("private_key", body[-1])])

# AWS id and secret side by side (the secret found next to its id).
for i in range(10):
    kid, sec = g_aws_id(), g_aws_secret()
    lines = ["[default]", f"aws_access_key_id = {kid}", f"aws_secret_access_key = {sec}", "region = eu-west-1"]
    if i % 2:
        lines = [filler_log(), f"loaded credentials {kid} / {sec} from instance metadata", filler_log()]
    doc("aws_pair", "env" if i % 2 == 0 else "log", lines,
        planted=[("aws_access_key_id", kid), ("aws_secret_access_key", sec)])

# Basic auth headers.
for i in range(10):
    user, pw = R.choice(FIRST), g_password()
    v = base64.b64encode(f"{user}:{pw}".encode()).decode()
    doc("basic_auth", "log", [filler_log(), f"> Authorization: Basic {v}", filler_log()],
        planted=[("basic_auth", v)])

# ---- decoys --------------------------------------------------------------------------------------

def uuid4():
    h = rs(HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{R.choice('89ab')}{h[17:20]}-{h[20:]}"


def bad_card():
    num = card(R.choice(["4", "51", "6011"]), 16)
    last = str((int(num[-1]) + R.randint(1, 9)) % 10)
    num = num[:-1] + last
    return R.choice([num, group(num, " "), group(num, "-")])


def bad_iban():
    v = iban("DE", rs(string.digits, 18))
    check = int(v[2:4])
    return v[:2] + f"{(check + R.randint(1, 50)) % 97 + 2:02d}" + v[4:]


def ed25519_pub():
    return "AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(B64, 43)


def b64_image():
    return "iVBORw0KGgoAAAANSUhEUgAA" + rs(B64, 400)


DECOYS = {
    "git_sha": (lambda: rs(HEX, 40), [log_ctx("deployed commit {v} to production"), json_ctx("sha"),
                                      lambda v: ("code", ["$ git checkout " + v, "HEAD is now at " + v[:7] + " fix retry loop"])]),
    "uuid": (uuid4, [json_ctx("request_id"), log_ctx("trace_id={v} span=checkout")]),
    "luhn_invalid_card": (bad_card, [json_ctx("reference"), log_ctx("ticket {v} escalated")]),
    "ssh_public_key": (ed25519_pub, [lambda v: ("code", ["# authorized_keys", f"ssh-ed25519 {v} deploy@ci-runner"])]),
    "pem_public_key": (lambda: rs(B64, 64), [lambda v: ("code", ["-----BEGIN PUBLIC KEY-----", v, rs(B64, 64), "-----END PUBLIC KEY-----"])]),
    "sha256_hash": (lambda: rs(HEX, 64), [log_ctx("artifact sha256={v} verified"), json_ctx("checksum")]),
    "md5_hash": (lambda: rs(HEX, 32), [log_ctx("etag \"{v}\" unchanged")]),
    "base64_image": (b64_image, [lambda v: ("json", ["{", f'  "avatar": "data:image/png;base64,{v}",', '  "w": 64', "}"])]),
    "version": (lambda: f"{R.randint(0, 30)}.{R.randint(0, 40)}.{R.randint(0, 200)}" + R.choice(["", "-rc.1", "+build.7", "-beta.3"]),
                [log_ctx("upgraded runtime to v{v}"), json_ctx("version")]),
    "order_id": (lambda: R.choice(["ORD", "INV", "PO"]) + "-" + str(R.randint(2020, 2026)) + "-" + rs(string.digits, 8),
                 [log_ctx("order {v} shipped"), json_ctx("order_id")]),
    "timestamp_ms": (lambda: str(R.randint(1_600_000_000_000, 1_800_000_000_000)), [json_ctx("created_at_ms")]),
    "ip_address": (lambda: f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}", [log_ctx("client {v} connected")]),
    "placeholder": (lambda: R.choice(["${DB_PASSWORD}", "<your-api-key>", "changeme", "${{ secrets.NPM_TOKEN }}", "********", "os.environ['TOKEN']"]),
                    [env_ctx("API_TOKEN"), yaml_ctx("password")]),
    "stripe_publishable": (lambda: "pk_live_" + rs(ALNUM, 24), [code_ctx("publishable_key")]),
    "aws_account_arn": (lambda: f"arn:aws:iam::{rs(string.digits, 12)}:role/deploy", [json_ctx("role_arn")]),
    "invalid_iban": (bad_iban, [json_ctx("iban_reference")]),
    "npm_package": (lambda: f"@types/node@{R.randint(14, 22)}.{R.randint(0, 20)}.{R.randint(0, 9)}", [log_ctx("installed {v}")]),
}

DECOYS_PER = 12
for family, (gen, templates) in DECOYS.items():
    for i in range(DECOYS_PER):
        v = gen()
        fmt, lines = templates[i % len(templates)](v)
        doc("decoy:" + family, fmt, lines, decoys=[(family, v)])


# ---- the forms real leaks take (issue 15) ---------------------------------------------------------
# Tool results, logs, curl commands, manifests, e-mails and chat, each with values written the
# way they are in the wild: glued to ids, wrapped, base64-wrapped, URL-encoded, JSON-escaped,
# on command lines, as passphrases, and personal data in national forms.

def b64s(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def g_glued_token():
    return R.choice([g_github, g_aws_id, g_slack, g_stripe, g_openai, g_gitlab, g_npm])()


def kind_of(token):
    for prefix, kind in [("gh", "github_token"), ("github_pat_", "github_token"), ("AKIA", "aws_access_key_id"), ("xox", "slack_token"),
                         ("xapp", "slack_token"), ("sk_", "stripe_key"), ("rk_", "stripe_key"),
                         ("sk-", "openai_key"), ("gl", "gitlab_token"), ("npm_", "npm_token")]:
        if token.startswith(prefix):
            return kind
    raise ValueError(token)


GLUED = [
    lambda t: ("log", [filler_log(), f"tool call finished session=sess-{t} status=ok", filler_log()]),
    lambda t: ("json", ["{", '  "tool": "crm/get_account",', f'  "correlation_id": "tool_{t}",', '  "ok": true', "}"]),
    lambda t: ("log", [filler_log(), f"> x-api-key: x-{t}", filler_log()]),
    lambda t: ("json", ["{", f'  "session": "run_{t}_2",', '  "step": 4', "}"]),
    lambda t: ("chat", ["[10:02] maria: which id did the job use?", f"[10:03] wei: job-{t}.retry", "[10:03] maria: thanks"]),
]
for i in range(40):
    t = g_glued_token()
    fmt, lines = GLUED[i % len(GLUED)](t)
    doc("glued", fmt, lines, planted=[(kind_of(t), t)], form="glued")


def wrap(s, width):
    return [s[i:i + width] for i in range(0, len(s), width)]


# Wrapped at 64 or 76 columns: a token in an e-mail (also quoted), a JWT in a log, a PEM body in
# an e-mail, a shell continuation inside a value.
for i in range(40):
    k = i % 5
    if k == 0:
        t = g_openai() if i % 2 else g_anthropic()
        lead = "Hi Sven, the key for the staging project is "
        line = lead + t
        cut = 76
        pieces = [line[:cut], line[cut:]]
        parts = [pieces[0][len(lead):], pieces[1]]
        doc("wrapped", "email", ["From: Priya <p@contoso.co.uk>", "Subject: staging", "", pieces[0], pieces[1], "", "Cheers,", "Priya"],
            planted=[(kind_of(t) if t.startswith("sk-") and not t.startswith("sk-ant") else "anthropic_key", t, "wrapped", parts)])
    elif k == 1:
        t = g_jwt()
        line = "2026-11-25T10:00:01Z DEBUG auth header Authorization: Bearer " + t
        pieces = wrap(line, 64)
        parts = [p for p in pieces if len(p) >= 8]
        parts[0] = parts[0][parts[0].index("Bearer ") + 7:] if "Bearer " in parts[0] else parts[0]
        parts = [p for p in parts if p and p in t]
        doc("wrapped", "log", [filler_log()] + pieces + [filler_log()], planted=[("jwt", t, "wrapped", parts)])
    elif k == 2:
        body = pem_body(R.randint(6, 12))
        quoted = ["> " + l for l in ["-----BEGIN OPENSSH PRIVATE KEY-----"] + body + ["-----END OPENSSH PRIVATE KEY-----"]]
        doc("wrapped", "email", ["On Tue, Ken wrote:", "> here is the deploy key, please rotate after", ">"] + quoted + ["", "Rotated, thanks."],
            planted=[("private_key", body[0], "wrapped", [body[0]]), ("private_key", body[-1], "wrapped", [body[-1]])])
    elif k == 3:
        t = g_github()
        cut = R.randint(8, len(t) - 8)
        doc("wrapped", "shell", ["#!/bin/sh", f"export GITHUB_TOKEN={t[:cut]}\\", f"{t[cut:]}", "gh repo list acme"],
            planted=[("github_token", t, "wrapped", [t[:cut], t[cut:]])])
    else:
        t = g_slack()
        line = "    \"text\": \"rotate the bot token " + t
        pieces = wrap(line, 64)
        parts = [p for p in (pieces[0][pieces[0].index("token ") + 6:],) + tuple(pieces[1:]) if p]
        doc("wrapped", "chat", ["[09:14] ken: pasting the old config (wrapped by the terminal)"] + pieces + ["[09:15] radia: please revoke it"],
            planted=[("slack_token", t, "wrapped", parts)])


# Base64-wrapped credentials: HTTP Basic, SMTP AUTH, Kubernetes Secrets (YAML and JSON, with a
# Docker config inside), with their non-secret neighbours as decoys.
def smtp_transcript(user, pw, plain):
    if plain:
        v = b64s(f"\0{user}\0{pw}")
        return v, ["S: 220 mail.globex.de ESMTP", "C: EHLO client", "S: 250-AUTH PLAIN LOGIN", f"C: AUTH PLAIN {v}", "S: 235 2.7.0 Authentication successful"]
    v = b64s(pw)
    return v, ["S: 220 mail.globex.de ESMTP", "C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", f"C: {b64s(user)}", "S: 334 UGFzc3dvcmQ6", f"C: {v}", "S: 235 2.7.0 ok"]


for i in range(50):
    k = i % 5
    user, pw = R.choice(FIRST), g_password()
    if k == 0:
        v = b64s(f"{user}:{pw}")
        doc("base64", "log", ["$ curl -v https://api.acme.io/v1/reports", "> GET /v1/reports HTTP/1.1", "> Host: api.acme.io",
                              f"> Authorization: Basic {v}", "< HTTP/1.1 200 OK"], planted=[("basic_auth", v)], form="base64")
    elif k == 1:
        v, lines = smtp_transcript(email_addr(), pw, i % 2 == 0)
        doc("base64", "log", lines, planted=[("smtp_auth", v)], form="base64")
    elif k in (2, 3):
        url = f"postgres://{user}:{pw}@db.internal:5432/app"
        dcfg = json.dumps({"auths": {"registry.acme.io": {"auth": b64s(f"ci:{g_password()}")}}})
        token = g_generic()
        secrets = [("DATABASE_URL", b64s(url)), ("api-token", b64s(token)), (".dockerconfigjson", b64s(dcfg)),
                   ("password", b64s(pw))]
        name, val = secrets[i % 4]
        uname = b64s(user)
        ca = b64s("-----BEGIN CERTIFICATE-----\n" + rs(B64, 64) + "\n-----END CERTIFICATE-----\n")
        if k == 2:
            lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {user}-credentials", "  namespace: prod",
                     "type: Opaque", "data:", f"  username: {uname}", f"  {name}: {val}", f"  ca.crt: {ca}"]
            doc("base64", "yaml", lines, planted=[("encoded_secret", val)], decoys=[("k8s_plain_value", uname), ("k8s_plain_value", ca)], form="base64")
        else:
            obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{user}-credentials"},
                   "data": {"username": uname, name: val}, "type": "Opaque"}
            doc("base64", "json", json.dumps(obj, indent=2).split("\n"), planted=[("encoded_secret", val)],
                decoys=[("k8s_plain_value", uname)], form="base64")
    else:
        v = b64s(f"{user}:{pw}")
        doc("base64", "json", ["{", '  "request": {', '    "method": "GET",', f'    "headers": {{"Authorization": "Basic {v}"}}', "  }", "}"],
            planted=[("basic_auth", v)], form="base64")


# URL-encoded: e-mail addresses with %40, webhooks and tokens inside query strings.
def pct(s, safe=""):
    from urllib.parse import quote
    return quote(s, safe=safe)


for i in range(40):
    k = i % 4
    if k == 0:
        e = email_addr()
        v = pct(e)
        doc("urlencoded", "log", [filler_log(), f'10.0.4.2 - - "GET /unsubscribe?email={v}&list=weekly HTTP/1.1" 200', filler_log()],
            planted=[("email", v)], form="urlencoded")
    elif k == 1:
        h = g_slack_webhook() if i % 2 else g_discord_webhook()
        v = pct(h)
        secret_part = v[-24:]
        doc("urlencoded", "log", [filler_log(), f"POST /v1/alerts/register?target={v}&events=deploy 201", filler_log()],
            planted=[("slack_webhook" if "slack" in h else "discord_webhook", v, "urlencoded", [secret_part])])
    elif k == 2:
        t = rs(ALNUM, 24)
        v = t
        doc("urlencoded", "log", [filler_log(), f"GET https://api.acme.io/v2/export?format=csv&auth={t}&limit=100 200 in 31ms", filler_log()],
            planted=[("query_secret", v)], form="urlencoded")
    else:
        t = g_github()
        v = pct(f"https://app.acme.io/cb?access_token={t}")
        doc("urlencoded", "json", ["{", f'  "redirect_uri": "{v}",', '  "state": "af0ifjsldkj"', "}"],
            planted=[("github_token", t)], form="urlencoded")


# JSON-escaped and doubly escaped strings (a tool result that embeds a JSON document).
for i in range(30):
    k = i % 3
    pw = g_password()
    if k == 0:
        inner = json.dumps({"user": R.choice(FIRST), "password": pw})
        doc("json_escaped", "json", ["{", f'  "stdout": {json.dumps(inner)},', '  "exit_code": 0', "}"],
            planted=[("secret_assignment", pw)], form="json_escaped")
    elif k == 1:
        inner = json.dumps({"db_password": pw})
        twice = json.dumps(json.dumps({"payload": inner}))
        doc("json_escaped", "json", ["{", f'  "event": {twice}', "}"], planted=[("secret_assignment", pw)], form="json_escaped")
    else:
        t = g_bearer()
        inner = json.dumps({"headers": {"Authorization": f"Bearer {t}"}})
        doc("json_escaped", "json", ["{", f'  "request_log": {json.dumps(inner)}', "}"],
            planted=[("authorization", t)], form="json_escaped")


# Shell forms in CI logs and shell history.
def g_shell_pw():
    return rs(ALNUM, R.randint(8, 12)) + R.choice(["!", "#", "%", "&x", ";z", " and ", "("]) + rs(ALNUM, 4)


SHELL = [
    lambda p: (f"mysql -h db.internal -u root -p'{p}' billing < migrate.sql", "cli_password"),
    lambda p: (f"PGPASSWORD='{p}' psql -h db.internal -U app -c 'select 1'", "secret_assignment"),
    lambda p: (f"curl -sS -u 'deploy:{p}' https://ci.acme.io/api/json", "cli_password"),
    lambda p: (f"./migrate --db-password '{p}' --dry-run", "cli_password"),
    lambda p: (f"sshpass -p '{p}' ssh admin@10.0.3.7 uptime", "cli_password"),
    lambda p: (f"redis-cli -h cache.internal -a '{p}' ping", "cli_password"),
    lambda p: (f"wget --password='{p}' https://files.acme.io/dump.tgz", "cli_password"),
]
for i in range(42):
    p = g_shell_pw()
    line, kind = SHELL[i % len(SHELL)](p)
    parts = [w for w in p.split(" ") if len(w) >= 3]
    if i % 3 == 0:
        doc("shell", "shell", ["$ history | tail -3", f"  501  cd /srv/app", f"  502  {line}", "  503  exit"],
            planted=[(kind, p, "shell", parts)])
    else:
        doc("shell", "log", ["+ set -x", f"+ {line}", "ok"], planted=[(kind, p, "shell", parts)])
for i in range(8):
    p = rs(ALNUM, 14)
    doc("shell", "log", ["$ docker login registry.acme.io \\", "    -u deploy \\", f"    -p {p}", "Login Succeeded"],
        planted=[("cli_password", p, "shell")])

# Passphrases with spaces after a password label.
WORDS4 = ["correct", "horse", "battery", "staple", "orange", "violin", "meadow", "rocket", "silver", "window",
          "planet", "garden", "copper", "lantern", "harbor", "pencil"]
PASS = [
    lambda v: ("env", ["# vault", f"VAULT_PASSPHRASE=\"{v}\"", "VAULT_ADDR=https://vault.internal:8200"]),
    lambda v: ("yaml", ["ssh:", "  key_file: ~/.ssh/id_ed25519", f"  passphrase: '{v}'"]),
    lambda v: ("json", ["{", '  "user": "ops",', f'  "password": "{v}"', "}"]),
    lambda v: ("code", ["def connect():", f'    password = "{v}"', "    return db.connect(password=password)"]),
]
for i in range(24):
    v = " ".join(R.choice(WORDS4) for _ in range(R.randint(3, 5)))
    fmt, lines = PASS[i % len(PASS)](v)
    doc("passphrase", fmt, lines, planted=[("secret_assignment", v, "passphrase", v.split(" "))])


# Phone numbers in national form and in international form with 00.
def g_national_phone():
    k = R.choice(["uk", "de", "fr", "nl", "00uk", "00de", "00us", "uk_mobile"])
    d = lambda n: rs(string.digits, n)
    return {
        "uk": lambda: f"020 {R.randint(3000, 8999)} {d(4)}",
        "uk_mobile": lambda: f"07{R.randint(100, 999)} {d(6)}",
        "de": lambda: f"030/{R.randint(1, 9)}{d(7)}",
        "fr": lambda: "0" + str(R.randint(1, 9)) + " " + " ".join(d(2) for _ in range(4)),
        "nl": lambda: f"06-{R.randint(1, 9)}{d(7)}",
        "00uk": lambda: f"0044 20 {R.randint(3000, 8999)} {d(4)}",
        "00de": lambda: f"0049 {R.randint(151, 179)} {R.randint(1, 9)}{d(6)}",
        "00us": lambda: f"001 {R.randint(201, 989)} {R.randint(201, 989)} {d(4)}",
    }[k]()


PHONES = [
    lambda v: ("email", ["Best regards,", "Fatima Haddad", "Account Manager", f"Tel: {v}", "www.globex.de"]),
    lambda v: ("chat", ["[14:01] olu: can you call the customer?", f"[14:02] noor: sure, their number is {v}", "[14:02] olu: thx"]),
    lambda v: ("json", ["{", '  "name": "Carlos Silva",', f'  "phone": "{v}",', '  "tier": "gold"', "}"]),
    lambda v: ("log", [filler_log(), f"sms queued to {v} template=otp status=accepted", filler_log()]),
]
for i in range(40):
    v = g_national_phone()
    fmt, lines = PHONES[i % len(PHONES)](v)
    doc("national_phone", fmt, lines, planted=[("phone", v)], form="national_phone")


# National identifiers with check digits.
VD = [[0,1,2,3,4,5,6,7,8,9],[1,2,3,4,0,6,7,8,9,5],[2,3,4,0,1,7,8,9,5,6],[3,4,0,1,2,8,9,5,6,7],[4,0,1,2,3,9,5,6,7,8],
      [5,9,8,7,6,0,4,3,2,1],[6,5,9,8,7,1,0,4,3,2],[7,6,5,9,8,2,1,0,4,3],[8,7,6,5,9,3,2,1,0,4],[9,8,7,6,5,4,3,2,1,0]]
VP = [[0,1,2,3,4,5,6,7,8,9],[1,5,7,6,2,8,3,0,9,4],[5,8,0,3,7,9,6,1,4,2],[8,9,1,6,0,4,3,5,2,7],
      [9,4,5,3,1,2,6,8,7,0],[4,2,8,6,5,7,3,9,0,1],[2,7,9,3,8,0,6,4,1,5],[7,0,4,6,9,1,3,2,5,8]]
VINV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_ok(num):
    c = 0
    for i, ch in enumerate(reversed(num)):
        c = VD[c][VP[i % 8][int(ch)]]
    return c == 0


def aadhaar(valid=True):
    body = str(R.randint(2, 9)) + rs(string.digits, 10)
    c = 0
    for i, ch in enumerate(reversed(body)):
        c = VD[c][VP[(i + 1) % 8][int(ch)]]
    d = VINV[c]
    if not valid:
        d = (d + R.randint(1, 9)) % 10
    return body + str(d)


def steuer_check(d10):
    product = 10
    for ch in d10:
        s_ = (int(ch) + product) % 10 or 10
        product = (s_ * 2) % 11
    return str((11 - product) % 10)


def steuer_id(valid=True):
    while True:
        digits = R.sample(string.digits, 9)
        if digits[0] == "0":
            continue
        rep = R.choice(digits)
        d10 = digits[:]
        d10.insert(R.randint(1, 9), rep)
        d10 = "".join(d10)
        if any(d10[j] == d10[j + 1] == d10[j + 2] for j in range(8)):
            continue
        c = steuer_check(d10)
        if not valid:
            c = str((int(c) + R.randint(1, 9)) % 10)
        return d10 + c


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni(valid=True):
    if R.random() < 0.5:
        n = R.randint(10_000_000, 99_999_999)
        base = str(n)
    else:
        p = R.choice("XYZ")
        m = R.randint(1_000_000, 9_999_999)
        n = int(str("XYZ".index(p)) + str(m))
        base = p + str(m)
    letter = DNI_LETTERS[n % 23]
    if not valid:
        letter = DNI_LETTERS[(n + R.randint(1, 22)) % 23]
    return base + letter


def bsn(valid=True):
    while True:
        d = rs(string.digits, 8)
        if d[0] == "0":
            continue
        s_ = sum((9 - i) * int(ch) for i, ch in enumerate(d))
        last = s_ % 11
        if valid and last <= 9:
            return d + str(last)
        if not valid:
            return d + str((last + R.randint(1, 9)) % 10) if last <= 9 else d + "0"


NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"


def nino(valid=True):
    while True:
        pre = R.choice(NINO_FIRST) + R.choice(NINO_SECOND)
        if pre not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    if not valid:
        pre = R.choice(["D", "F", "Q", "V"]) + R.choice(NINO_SECOND)
    n = rs(string.digits, 6)
    suf = R.choice("ABCD")
    return pre + n + suf if R.random() < 0.5 else f"{pre} {n[:2]} {n[2:4]} {n[4:]} {suf}"


def ssn_plain(valid=True):
    a = R.choice([R.randint(1, 665), R.randint(667, 899)]) if valid else R.choice([0, 666, R.randint(900, 999)])
    return f"{a:03d}{R.randint(1, 99):02d}{R.randint(1, 9999):04d}"


def spaced4(n):
    return " ".join(n[i:i + 4] for i in range(0, len(n), 4))


NATIONAL = {
    "us_ssn": (lambda v=True: ssn_plain(v), ["SSN: {v}", "ssn={v}", "Social Security Number {v}"]),
    "uk_nino": (nino, ["NI number {v}", "National Insurance: {v}", "employee {v} payroll"]),
    "in_aadhaar": (lambda v=True: spaced4(aadhaar(v)), ["Aadhaar {v}", "KYC doc: {v} verified", "uid {v}"]),
    "de_tax_id": (lambda v=True: steuer_id(v), ["Steuer-IdNr: {v}", "steuerliche Identifikationsnummer {v}", "TIN {v}"]),
    "es_dni": (dni, ["DNI {v}", "NIE/DNI: {v}", "documento {v} verificado"]),
    "nl_bsn": (bsn, ["BSN {v}", "burgerservicenummer: {v}", "BSN-nummer {v}"]),
}
NATIONAL_DOCS = [
    lambda line: ("email", ["Hi HR,", "", f"for the onboarding: {line}", "", "Regards,", "Sven"]),
    lambda line: ("json", ["{", '  "employee": "E-1042",', f'  "note": "{line}"', "}"]),
    lambda line: ("chat", ["[11:20] maria: what do you need from me?", f"[11:21] ken: {line}", "[11:21] maria: sent"]),
]
for kind, (gen, labels) in NATIONAL.items():
    for i in range(12):
        v = gen(True)
        line = labels[i % len(labels)].format(v=v)
        fmt, lines = NATIONAL_DOCS[i % len(NATIONAL_DOCS)](line)
        doc("national_id", fmt, lines, planted=[(kind, v)], form="national_id")
    for i in range(8):
        v = gen(False)
        line = labels[i % len(labels)].format(v=v)
        fmt, lines = NATIONAL_DOCS[i % len(NATIONAL_DOCS)](line)
        doc("decoy:national_id_failing_check", fmt, lines, decoys=[(kind + "_failing_check", v)])


# Tool results with environment dumps: several secrets among ordinary variables.
for i in range(16):
    gh, aws_id, aws_sec, pw = g_github(), g_aws_id(), g_aws_secret(), g_password()
    sha, uid = rs(HEX, 40), uuid4() if "uuid4" in globals() else rs(HEX, 32)
    lines = ["$ env | sort", "HOME=/home/runner", f"HOSTNAME=ci-{rs(HEX, 12)}", "LANG=C.UTF-8",
             f"GITHUB_SHA={sha}", f"GITHUB_TOKEN={gh}", f"AWS_ACCESS_KEY_ID={aws_id}",
             f"AWS_SECRET_ACCESS_KEY={aws_sec}", f"DB_PASSWORD={pw}", f"RUN_ID={uid}",
             "PATH=/usr/local/bin:/usr/bin:/bin", "SHLVL=1"]
    doc("env_dump", "env", lines,
        planted=[("github_token", gh), ("aws_access_key_id", aws_id), ("aws_secret_access_key", aws_sec),
                 ("secret_assignment", pw)],
        decoys=[("git_sha", sha), ("uuid", uid)], form="env_dump")


# Decoys of the new forms: documentation examples and look-alikes that must stay readable.
JWT_IO = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
          ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
DOC_EXAMPLES = [
    ("aws_doc_example", "AKIAIOSFODNN7EXAMPLE", lambda v: ("code", ["# from the AWS docs:", f"export AWS_ACCESS_KEY_ID={v}"])),
    ("aws_doc_example", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", lambda v: ("env", ["[default]", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", f"aws_secret_access_key = {v}"])),
    ("jwt_io_example", JWT_IO, lambda v: ("code", ["# try it:", f"curl -H 'Authorization: Bearer {v}' http://localhost:8080/me"])),
    ("jwt_io_example", JWT_IO, lambda v: ("json", ["{", f'  "example_token": "{v}"', "}"])),
]
for i in range(24):
    kind, v, ctx = DOC_EXAMPLES[i % len(DOC_EXAMPLES)]
    fmt, lines = ctx(v)
    doc("decoy:" + kind, fmt, lines, decoys=[(kind, v)])

PHONE_LIKE = [
    lambda: f"{R.randint(1, 28):02d}.{R.randint(1, 12):02d}.2026 {R.randint(10, 23)}:{R.randint(10, 59)}",
    lambda: f"v0.{R.randint(10, 99)}.{rs(string.digits, 8)}",
    lambda: f"took 0.{rs(string.digits, 10)} s",
    lambda: f"ORD-2026-{rs(string.digits, 8)}",
    lambda: "0x" + rs(HEX, 12),
]
for i in range(20):
    v = PHONE_LIKE[i % len(PHONE_LIKE)]()
    doc("decoy:phone_like", "log", [filler_log(), f"batch finished {v} rows=120", filler_log()], decoys=[("phone_like", v)])

for i in range(20):
    k = i % 4
    if k == 0:
        v = "q=" + pct("how to reset password") + "&page=2"
        doc("decoy:urlencoded_plain", "log", [filler_log(), f"GET /search?{v} 200", filler_log()], decoys=[("urlencoded_plain", v)])
    elif k == 1:
        v = rs(HEX, 40)
        doc("decoy:hex_at_line_end", "log", [f"2026-11-25T10:00:00Z INFO deployed build request_id={v}", filler_log()],
            decoys=[("git_sha", v)])
    elif k == 2:
        v = uuid4()
        doc("decoy:glued_id", "json", ["{", f'  "session": "sess-{v}",', f'  "correlation_id": "tool_{rs(HEX, 16)}"', "}"],
            decoys=[("uuid", v)])
    else:
        v = card(R.choice(["4", "51"]), 16)
        v = v[:-1] + str((int(v[-1]) + 3) % 10)
        doc("decoy:order_number", "chat", ["[16:40] ada: refund order", f"[16:41] wei: order no. {v} refunded"], decoys=[("luhn_invalid_order", v)])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.jsonl")
with open(out, "w") as f:
    for d in docs:
        f.write(json.dumps(d, sort_keys=True) + "\n")
planted = sum(len(d["planted"]) for d in docs)
decoys = sum(len(d["decoys"]) for d in docs)
fams = {p["kind"] for d in docs for p in d["planted"]}
print(f"{len(docs)} documents, {planted} planted values in {len(fams)} families, {decoys} decoys -> {out}")
