#!/usr/bin/env python3
"""Generate the planted-secret corpus for Warden's redaction engine.

Every secret here is synthetic: random characters in the published format of its family
(prefixes and lengths as catalogued by gitleaks/trufflehog), never a real credential. Decoys are
look-alikes that must be kept: git SHAs, UUIDs, Luhn-invalid card numbers, public keys, hashes,
base64 image data, version strings, order ids, placeholders.

Output: corpus.jsonl, one document per line:
  {"id": "...", "family": "...", "format": "log|json|env|email|code|yaml",
   "text": "...", "planted": [{"kind": "...", "value": "..."}], "decoys": [...]}
A value is placed on one line of its document so line-based tools can be scored too.

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


def doc(family, fmt, lines, planted=(), decoys=()):
    docs.append({
        "id": f"{family}-{len(docs):04d}",
        "family": family,
        "format": fmt,
        "text": "\n".join(lines) + "\n",
        "planted": [{"kind": k, "value": v} for k, v in planted],
        "decoys": [{"kind": k, "value": v} for k, v in decoys],
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

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.jsonl")
with open(out, "w") as f:
    for d in docs:
        f.write(json.dumps(d, sort_keys=True) + "\n")
planted = sum(len(d["planted"]) for d in docs)
decoys = sum(len(d["decoys"]) for d in docs)
fams = {p["kind"] for d in docs for p in d["planted"]}
print(f"{len(docs)} documents, {planted} planted values in {len(fams)} families, {decoys} decoys -> {out}")
