#!/usr/bin/env python3
"""Warden's redaction engine beside detect-secrets and secretlint on the same corpus.

Set-up (once):
  python3 -m venv /var/tmp/redact-venv && /var/tmp/redact-venv/bin/pip install detect-secrets
  (cd bench/redaction/node && npm install)        # secretlint + preset-recommend
  cargo build --release -p warden

Run:
  python3 bench/redaction/run.py [--warden target/release/warden] [--scale 20]
                                 [--warden-before OLD_BINARY]   # an earlier build, same run

What it measures, for each tool, on tests/redaction/corpus.jsonl (generate.py there):
- recall: planted values found / planted values;
- decoy-keep: decoys left alone / decoys;
- MB/s: bytes per CPU-second (user + system) of one run of the tool's CLI over the corpus
  repeated --scale times (process start-up included, the same for every tool), and over a
  mostly clean mix.

Scoring. A planted value is written in one or more parts (a wrapped token on two lines, a
passphrase's words). detect-secrets and secretlint report findings by line, so for them a
planted value is found when findings cover the lines of all its parts, and a decoy is kept when
no finding covers its line. Warden rewrites the text, so it is scored on the value itself, per
document: found only when none of its parts is left in the output (nor the first or last 12
characters of a part of 24 or more: a value cut short), kept only when the decoy is still there
verbatim — the stricter test. Recall is reported per family and per form (plain, glued,
wrapped, base64, urlencoded, json_escaped, shell, passphrase, national_phone, national_id,
env_dump).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = "/var/tmp/redact-bench"
EXT = {"log": "log", "json": "json", "env": "env", "email": "txt", "code": "py", "yaml": "yaml",
       "chat": "txt", "shell": "sh"}
# Between documents in Warden's single input, so its output can be split back per document.
BOUNDARY = "\n#### warden-bench document boundary ####\n"


def load():
    with open(os.path.join(ROOT, "tests", "redaction", "corpus.jsonl")) as f:
        return [json.loads(l) for l in f]


def line_of(text, value):
    i = text.find(value)
    return None if i < 0 else text.count("\n", 0, i) + 1


def write_docs(docs):
    d = os.path.join(WORK, "docs")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    paths = {}
    for doc in docs:
        p = os.path.join(d, f"{doc['id']}.{EXT[doc['format']]}")
        with open(p, "w") as f:
            f.write(doc["text"])
        paths[doc["id"]] = p
    return d, paths


def parts(value):
    return value.get("parts") or [value["value"]]


def leaked(value, out):
    for p in parts(value):
        if p in out or (len(p) >= 24 and (p[:12] in out or p[-12:] in out)):
            return True
    return False


def tally(rec, form, p, hit):
    for key in (p["kind"], "form:" + p.get("form", "plain")):
        r = rec[key]
        r[1] += 1
        r[0] += hit


def score_lines(docs, paths, flagged):
    """flagged: {path: set(line numbers)} -> (recall, keep) per family and form."""
    rec, keep = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    for doc in docs:
        lines = flagged.get(os.path.realpath(paths[doc["id"]]), set())
        for p in doc["planted"]:
            hit = all(line_of(doc["text"], part) in lines for part in parts(p))
            tally(rec, None, p, hit)
        for k in doc["decoys"]:
            r = keep[k["kind"]]
            r[1] += 1
            r[0] += line_of(doc["text"], k["value"]) not in lines
    return rec, keep


def run_detect_secrets(docs, docdir, paths):
    exe = "/var/tmp/redact-venv/bin/detect-secrets"
    out = subprocess.run([exe, "scan", "--all-files", "."], cwd=docdir, capture_output=True,
                         text=True, check=True).stdout
    flagged = defaultdict(set)
    for fname, results in json.loads(out)["results"].items():
        for r in results:
            flagged[os.path.realpath(os.path.join(docdir, fname))].add(r["line_number"])
    return score_lines(docs, paths, flagged)


def secretlint_cmd():
    node = os.path.join(HERE, "node")
    return [os.path.join(node, "node_modules", ".bin", "secretlint")], node


def run_secretlint(docs, docdir, paths):
    cmd, node = secretlint_cmd()
    rc = os.path.join(WORK, ".secretlintrc.json")
    with open(rc, "w") as f:
        json.dump({"rules": [{"id": "@secretlint/secretlint-rule-preset-recommend"}]}, f)
    # secretlint searches below its working directory only; large JSON on a pipe is cut
    # short when node exits, so it writes to a file.
    out = os.path.join(WORK, "secretlint.json")
    subprocess.run(cmd + ["--format", "json", "--output", out, "--secretlintrc", rc, "*"],
                   cwd=docdir, capture_output=True, text=True)
    flagged = defaultdict(set)
    with open(out) as f:
        results = json.load(f)
    for res in results:
        for m in res.get("messages", []):
            for ln in range(m["loc"]["start"]["line"], m["loc"]["end"]["line"] + 1):
                flagged[os.path.realpath(res["filePath"])].add(ln)
    return score_lines(docs, paths, flagged)


def run_warden(docs, warden):
    text = BOUNDARY.join(d["text"] for d in docs)
    env = dict(os.environ, WARDEN_REDACTION_KEY="00" * 32)
    out = subprocess.run([warden, "redact"], input=text, capture_output=True, text=True,
                         check=True, env=env, cwd=WORK).stdout
    outs = out.split(BOUNDARY)
    assert len(outs) == len(docs), "the document boundary did not survive redaction"
    rec, keep = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    for doc, o in zip(docs, outs):
        for p in doc["planted"]:
            tally(rec, None, p, not leaked(p, o))
        for k in doc["decoys"]:
            r = keep[k["kind"]]
            r[1] += 1
            r[0] += k["value"] in o
    return rec, keep


def clean_mix(size):
    import random
    rnd = random.Random(7)
    words = ("the customer asked about their invoice refund was approved by support agent ticket "
             "escalated because payment failed twice order shipped tracking number update").split()
    out = []
    n = 0
    while n < size:
        k = rnd.randrange(3)
        if k == 0:
            s = (f"2026-11-25T10:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}Z INFO worker[{rnd.randrange(9999)}] "
                 + " ".join(rnd.choice(words) for _ in range(6)) + f" request_id={rnd.getrandbits(64):016x}")
        elif k == 1:
            s = json.dumps({"id": f"ORD-2026-{rnd.randrange(10**8):08d}", "amount": rnd.randrange(10**5) / 100,
                            "commit": f"{rnd.getrandbits(160):040x}",
                            "note": " ".join(rnd.choice(words) for _ in range(10))})
        else:
            s = " ".join(rnd.choice(words) for _ in range(30)) + "."
        out.append(s)
        n += len(s) + 1
    return "\n".join(out) + "\n"


def throughput(name, cmd_for, path, **kw):
    """MB per CPU-second (user + system of the tool's processes, as far as they are waited
    for): the machine is shared, so wall-clock time would measure the other load as much as
    the tool. Wall-clock seconds are returned too."""
    import resource
    size = os.path.getsize(path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd_for(path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    dt = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return size / dt / 1e6, dt, wall


def table(title, results, forms=False):
    pick = (lambda f: f.startswith("form:")) if forms else (lambda f: not f.startswith("form:"))
    results = {t: {f: v for f, v in r.items() if pick(f)} for t, r in results.items()}
    fams = sorted({f for r in results.values() for f in r})
    print(f"\n{title}")
    print(f"  {'family':<26}" + "".join(f"{t:>16}" for t in results))
    for f in fams:
        row = ""
        for t in results:
            h, n = results[t].get(f, [0, 0])
            row += f"{f'{h}/{n}':>16}" if n else f"{'-':>16}"
        print(f"  {f.removeprefix('form:'):<26}{row}")
    tot = ""
    for t in results:
        h = sum(v[0] for v in results[t].values())
        n = sum(v[1] for v in results[t].values())
        tot += f"{f'{h}/{n} {h / n:.3f}':>16}"
    print(f"  {'ALL':<26}{tot}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "warden"))
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--clean-mb", type=float, default=4.0, help="size of the clean mix, MiB")
    ap.add_argument("--warden-before", help="an earlier warden binary, scored and timed beside")
    args = ap.parse_args()
    docs = load()
    os.makedirs(WORK, exist_ok=True)
    docdir, paths = write_docs(docs)
    recall, keep = {}, {}
    if args.warden_before:
        recall["warden-before"], keep["warden-before"] = run_warden(docs, args.warden_before)
    recall["warden"], keep["warden"] = run_warden(docs, args.warden)
    recall["detect-secrets"], keep["detect-secrets"] = run_detect_secrets(docs, docdir, paths)
    recall["secretlint"], keep["secretlint"] = run_secretlint(docs, docdir, paths)
    planted = sum(len(d["planted"]) for d in docs)
    decoys = sum(len(d["decoys"]) for d in docs)
    size = sum(len(d["text"].encode()) for d in docs)
    print(f"corpus: {len(docs)} documents, {size / 1e6:.2f} MB, {planted} planted values, {decoys} decoys")
    table("recall (planted values found)", recall)
    table("recall by form", recall, forms=True)
    table("decoy-keep (look-alikes left alone)", keep)

    big = os.path.join(WORK, "corpus_x.txt")
    with open(big, "w") as f:
        text = "".join(d["text"] for d in docs)
        for _ in range(args.scale):
            f.write(text)
    clean = os.path.join(WORK, "clean_mix.txt")
    with open(clean, "w") as f:
        f.write(clean_mix(int(args.clean_mb * 1024 * 1024)))
    env = dict(os.environ, WARDEN_REDACTION_KEY="00" * 32)
    sl, node = secretlint_cmd()
    rc = os.path.join(WORK, ".secretlintrc.json")
    tools = {}
    if args.warden_before:
        tools["warden-before"] = (lambda p: [args.warden_before, "redact", p], {"env": env, "cwd": WORK})
    tools.update({
        "warden": (lambda p: [args.warden, "redact", p], {"env": env, "cwd": WORK}),
        # detect-secrets skips a file named by an absolute path outside its working directory
        # (it printed no results): it is given the file's name, from its directory.
        "detect-secrets": (lambda p: ["/var/tmp/redact-venv/bin/detect-secrets", "scan", "--all-files", os.path.basename(p)], {"cwd": WORK}),
        "secretlint": (lambda p: sl + ["--format", "json", "--output", os.path.join(WORK, "sl-tp.json"), "--secretlintrc", rc, os.path.basename(p)], {"cwd": WORK}),
    })
    print("\nthroughput (CPU time of one CLI run, start-up included; MB/s per CPU-second; wall "
          "seconds; ratio = warden / tool)")
    for label, path in [(f"corpus x{args.scale}", big), ("clean mix", clean)]:
        mb = os.path.getsize(path) / 1e6
        res = {t: throughput(t, c, path, **kw) for t, (c, kw) in tools.items()}
        w = res["warden"][0]
        print(f"  {label} ({mb:.1f} MB): " + ", ".join(
            f"{t} {v[0]:.2f} MB/s ({v[1]:.2f} s CPU, {v[2]:.1f} s wall, ratio {w / v[0]:.1f}x)"
            for t, v in res.items()))


if __name__ == "__main__":
    sys.exit(main())
