#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylinectl against a real admin server (tests/admin_testd: key table + kl_admin loop).

Every subcommand with its human output and --json, exit codes 0 (ok), 1 (server refused) and
2 (usage, files, connection), key check values computed here independently, and no key hex in
any output or in the server's log.

usage: test_keylinectl.py KEYLINECTL ADMIN_TESTD
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kl_itest import kcv  # noqa: E402
import dh_reference  # noqa: E402

CTL, TESTD = sys.argv[1], sys.argv[2]
SECRETS = []
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)


def key(n, tag):
    k = bytes((tag * 31 + i * 7 + 1) & 0xFF for i in range(n))
    SECRETS.append(k.hex())
    return k


def no_secret(text, where):
    low = text.lower()
    for s in SECRETS:
        if s[:16] in low:
            check(False, f"key hex {s[:16]}... in {where}")


def run(args, sock, want_rc, env=None, stdin=None):
    e = dict(os.environ)
    e.pop("KEYLINE_ADMIN_SOCKET", None)
    if env:
        e.update(env)
    argv = [CTL] + (["-s", sock] if sock else []) + args
    p = subprocess.run(argv, capture_output=True, text=True, env=e, input=stdin, timeout=30)
    no_secret(p.stdout + p.stderr, " ".join(args[:2]))
    check(p.returncode == want_rc,
          f"{args}: exit {p.returncode}, want {want_rc} (stdout {p.stdout!r} stderr {p.stderr!r})")
    if want_rc != 0:
        lines = p.stderr.strip().split("\n")
        check(len(lines) == 1 and lines[0].startswith("keylinectl: "),
              f"{args}: stderr not one keylinectl line: {p.stderr!r}")
    return p.stdout, p.stderr


def main():
    tmp = tempfile.mkdtemp(prefix="kl_ctl_test_")
    sock = os.path.join(tmp, "run", "admin.sock")
    log = open(os.path.join(tmp, "testd.log"), "w+")
    srv = subprocess.Popen([TESTD, sock, "8"], stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        ready = srv.stdout.readline().strip()
        check(ready == "ready", f"admin_testd did not start: {ready!r}")
        if ready != "ready":
            return
        body(tmp, sock)
        # no rotation, store or Diameter on this server
        _, err = run(["rotate", "00F110:1"], sock, 1)
        check("no MSK rotation is configured" in err, f"rotate without rotation: {err!r}")
        out, _ = run(["status"], sock, 0)
        check("store:    none\n" in out and "diameter: none\n" in out
              and "rotation: none\n" in out, f"plain status: {out!r}")
        check(out.startswith("keyline admin-testd (io socket, crypto openssl), uptime "),
              f"plain status head: {out!r}")
        check("s2s:      none\n" in out, f"plain status s2s: {out!r}")
        _, err = run(["peers"], sock, 1)
        check("no peers" in err, f"peers without a peer view: {err!r}")
        rotation_body(tmp)
        peers_body(tmp)
        # a second server on the same socket is refused; the first goes on
        p = subprocess.run([TESTD, sock], capture_output=True, text=True, timeout=30)
        check(p.returncode == 1 and "in use" in p.stderr, f"second server: {p.returncode} {p.stderr!r}")
        run(["ping"], sock, 0)
    finally:
        srv.terminate()
        try:
            rc = srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            rc = srv.wait()
        check(rc == 0, f"admin_testd exit {rc} on SIGTERM")
        check(not os.path.exists(sock), "socket file left behind")
        log.seek(0)
        text = log.read()
        no_secret(text, "server log")
        check("put-ue" in text, "server log lacks the put-ue line")
        shutil.rmtree(tmp, ignore_errors=True)


def body(tmp, sock):
    def wfile(name, text, mode=0o600):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    # ---- basics
    out, _ = run(["ping"], sock, 0)
    check(out == "pong\n", f"ping: {out!r}")
    out, _ = run(["ping"], None, 0, env={"KEYLINE_ADMIN_SOCKET": sock})
    check(out == "pong\n", "ping via KEYLINE_ADMIN_SOCKET")
    out, _ = run(["version"], sock, 0)
    check(out == "keyline admin-testd (io socket, crypto openssl)\n", f"version: {out!r}")
    out, _ = run(["--json", "ping"], sock, 0)
    check(json.loads(out) == {"ok": True, "pong": True}, f"ping --json: {out!r}")
    out, _ = run(["--help"], None, 0)
    check("usage: keylinectl" in out, "help")

    # ---- UE
    muk, muk2 = key(32, 1), key(40, 2)
    out, _ = run(["put-ue", "ue1@ims.example", "--muk", muk.hex(), "--group", "00F110:1",
                  "--group=00f110:2"], sock, 0)
    check(out == f"ue ue1@ims.example: added (kcv {kcv(muk)})\n", f"put-ue: {out!r}")
    f = wfile("muk2.hex", "\n  " + muk2.hex().upper() + "  \n")
    out, _ = run(["put-ue", "--muk-file", f, "ue1@ims.example", "--group", "00F110:3"], sock, 0)
    check(out == f"ue ue1@ims.example: replaced (kcv {kcv(muk2)})\n", f"put-ue file: {out!r}")
    out, _ = run(["show", "ue", "ue1@ims.example"], sock, 0)
    check(f"2 chunk(s), kcv {kcv(muk2)}" in out and "00f110:3" in out, f"show ue: {out!r}")
    out, _ = run(["put-ue", "ue2@ims.example", "--muk-file", "-"], sock, 0, stdin=muk.hex())
    check(f"added (kcv {kcv(muk)})" in out, f"put-ue stdin: {out!r}")
    out, _ = run(["show", "ue", "ue2@ims.example", "--json"], sock, 0)
    j = json.loads(out)
    check(j["kcv"] == kcv(muk) and j["muk_chunks"] == 1 and j["groups"] == [], f"show --json: {j}")
    check(j["expires"] == 0, f"show --json: no expiry means 0: {j}")
    out, _ = run(["show", "ue", "ue1@ims.example"], sock, 0)
    check("\n  expires  never\n" in out, f"show ue never: {out!r}")
    # the MUK's expiry (put-ue --expires T, T as for push-e2m); a replacement takes its own
    out, _ = run(["put-ue", "ue2@ims.example", "--muk", muk.hex(), "--expires",
                  "2031-05-06T07:08:09Z"], sock, 0)
    check(out == f"ue ue2@ims.example: replaced (kcv {kcv(muk)})\n", f"put-ue --expires: {out!r}")
    out, _ = run(["show", "ue", "ue2@ims.example"], sock, 0)
    check("\n  expires  2031-05-06T07:08:09Z (1935817689)\n" in out, f"show ue expires: {out!r}")
    out, _ = run(["show", "ue", "ue2@ims.example", "--json"], sock, 0)
    check(json.loads(out)["expires"] == 1935817689, f"show --json expires: {out!r}")
    t0 = int(time.time())
    run(["put-ue", "ue2@ims.example", "--muk", muk.hex(), "--expires", "now+100"], sock, 0)
    out, _ = run(["show", "ue", "ue2@ims.example", "--json"], sock, 0)
    ex = json.loads(out)["expires"]
    check(t0 + 100 <= ex <= int(time.time()) + 100, f"put-ue --expires now+100: {ex} (t0 {t0})")
    run(["put-ue", "ue2@ims.example", "--muk", muk.hex(), "--expires", str(t0 - 10)], sock, 0)
    out, _ = run(["show", "ue", "ue2@ims.example"], sock, 0)
    check(re.search(r"\n  expires  \S+Z \(%d\) expired\n" % (t0 - 10), out) is not None,
          f"show ue expired: {out!r}")
    for never in ("never", "0"):
        run(["put-ue", "ue2@ims.example", "--muk-file", "-", "--expires", never], sock, 0,
            stdin=muk.hex())
        out, _ = run(["show", "ue", "ue2@ims.example", "--json"], sock, 0)
        check(json.loads(out)["expires"] == 0, f"put-ue --expires {never}: {out!r}")

    # ---- group
    msk, msk2 = key(16, 3), key(16, 4)
    f = wfile("msk.hex", msk.hex())
    out, _ = run(["put-group", "00F110:1", "--msk-file", f, "--key-number", "1", "--valid-from",
                  "2030-01-01T00:00:00Z", "--valid-to", "1893459600", "--next-msk", msk2.hex()],
                 sock, 0)
    check(out == f"group 00f110:1: added (current kcv {kcv(msk)}, next kcv {kcv(msk2)})\n",
          f"put-group: {out!r}")
    out, _ = run(["show", "group", "00F110:1"], sock, 0)
    check("msk_id 0x00010001 (key 1)  valid 2030-01-01T00:00:00Z .. 2030-01-01T01:00:00Z  "
          f"kcv {kcv(msk)}" in out, f"show group current: {out!r}")
    check("msk_id 0x00010002 (key 2)  valid 2030-01-01T01:00:00Z .. 2030-01-01T02:00:00Z  "
          f"kcv {kcv(msk2)}" in out, f"show group next: {out!r}")
    out, _ = run(["put-group", "00F110:2", "--msk", msk.hex(), "--msk-id", "0x00020005",
                  "--valid-from", "now", "--valid-to", "now+60"], sock, 0)
    check("added" in out, f"put-group now: {out!r}")
    out, _ = run(["show", "group", "00F110:2", "--json"], sock, 0)
    j = json.loads(out)
    check(j["next"] is None and j["current"]["key_number"] == 5
          and j["current"]["valid_to"] - j["current"]["valid_from"] == 60, f"group 2: {j}")

    # ---- a UE's groups one at a time (its MUK and expiry kept); a group that does not exist
    # yet is taken with a warning; at most KL_TABLE_UE_GROUPS (4), as the Diameter feed
    u4 = "ue4@ims.example"
    out, err = run(["put-ue", u4, "--muk", muk.hex(), "--group", "00f110:1", "--group",
                    "00F110:77", "--expires", "2031-05-06T07:08:09Z"], sock, 0)
    check(err == "keylinectl: warning: group 00f110:77 does not exist (yet): the UE gets no key "
          "of it until it is put\n", f"put-ue with a missing group: {err!r}")
    out, err = run(["group-add", u4, "00F110:2"], sock, 0)
    check(out == f"ue {u4}: group added 00f110:2; groups 00f110:1, 00f110:77, 00f110:2\n"
          and err == "", f"group-add: {out!r} {err!r}")
    out, err = run(["group-add", u4, "00f110:78"], sock, 0)
    check("warning: group 00f110:78 does not exist" in err, f"group-add missing group: {err!r}")
    _, err = run(["group-add", u4, "00f110:79"], sock, 1)
    check("holds 4 key groups, the most a UE may hold" in err, f"group-add a fifth: {err!r}")
    _, err = run(["group-add", u4, "00f110:1"], sock, 1)
    check("already holds group 00f110:1" in err, f"group-add twice: {err!r}")
    out, _ = run(["group-del", u4, "00f110:77"], sock, 0)
    check(out == f"ue {u4}: group removed 00f110:77; groups 00f110:1, 00f110:2, 00f110:78\n",
          f"group-del: {out!r}")
    _, err = run(["group-del", u4, "00f110:77"], sock, 1)
    check("does not hold group 00f110:77" in err, f"group-del again: {err!r}")
    _, err = run(["group-add", "nobody", "00f110:1"], sock, 1)
    check("no such ue entry" in err, f"group-add unknown UE: {err!r}")
    _, err = run(["group-add", u4], sock, 2)
    check("give the UE's ID and the key group" in err, f"group-add usage: {err!r}")
    out, _ = run(["show", "ue", u4, "--json"], sock, 0)
    j = json.loads(out)
    check(j["groups"] == ["00f110:1", "00f110:2", "00f110:78"] and j["kcv"] == kcv(muk)
          and j["expires"] == 1935817689, f"group changes keep MUK and expiry: {j}")
    _, err = run(["put-ue", u4, "--muk", muk.hex()] + sum([["--group", f"00f110:{i}"]
                                                           for i in range(1, 6)], []), sock, 2)
    check("at most 4 --group" in err, f"put-ue with 5 groups: {err!r}")
    run(["del", "ue", u4], sock, 0)

    # ---- EMSE, E2M, appid
    psk = key(20, 5)
    f = wfile("psk.hex", psk.hex())
    out, _ = run(["put-emse", "emse1.corp.example", "--psk-file", f], sock, 0)
    check(out == f"emse emse1.corp.example: added (kcv {kcv(psk)})\n", f"put-emse: {out!r}")
    out, _ = run(["show", "emse", "emse1.corp.example"], sock, 0)
    check(f"1 chunk(s), kcv {kcv(psk)}" in out, f"show emse: {out!r}")
    e1, e2 = key(32, 6), key(32, 7)
    f = wfile("e1.hex", e1.hex())
    out, _ = run(["push-e2m", "001010000000001", "--key-file", f, "--key-id", "7", "--expires",
                  "2031-05-06T07:08:09Z"], sock, 0)
    check(out == f"imsi 001010000000001: key 7 added (kcv {kcv(e1)})\n", f"push-e2m: {out!r}")
    out, _ = run(["push-e2m", "001010000000001", "--key", e2.hex(), "--key-id", "0x8"], sock, 0)
    check("key 8 added" in out, f"push-e2m 2: {out!r}")
    out, _ = run(["show", "imsi", "001010000000001"], sock, 0)
    lines = out.strip().split("\n")
    check(len(lines) == 3 and "2 e2m key(s)" in lines[0], f"show imsi: {out!r}")
    check(re.search(r"key_id 8 +expires never +kcv " + kcv(e2), lines[1]) is not None,
          f"show imsi newest: {lines}")
    check(re.search(r"key_id 7 +expires 2031-05-06T07:08:09Z +kcv " + kcv(e1), lines[2])
          is not None, f"show imsi older: {lines}")
    out, _ = run(["put-appid", "app1@factory.example", "001010000000001"], sock, 0)
    check(out == "appid app1@factory.example: added (imsi 001010000000001)\n", f"put-appid: {out!r}")
    out, _ = run(["show", "appid", "app1@factory.example"], sock, 0)
    check(out == "appid app1@factory.example -> imsi 001010000000001\n", f"show appid: {out!r}")

    # ---- count, stats
    out, _ = run(["count"], sock, 0)
    check(re.search(r"^ues +2$", out, re.M) and re.search(r"^groups +2$", out, re.M)
          and re.search(r"^imsis +1$", out, re.M) and "memory" in out, f"count: {out!r}")
    out, _ = run(["stats"], sock, 0)
    check("totals: 123 requests, 90 key responses, 0 error responses, 3 engine drops, "
          "4 net drops" in out, f"stats totals: {out!r}")
    check(re.search(r"requests_received +123", out) and re.search(r"bad_mac +3", out)
          and "mean 2.5 us" in out, f"stats: {out!r}")
    out, _ = run(["stats", "--worker", "1"], sock, 0)
    check("showing worker 1" in out and "totals: 23 requests" in out, f"stats worker: {out!r}")
    out, _ = run(["stats", "--json"], sock, 0)
    j = json.loads(out)
    check(j["engine"]["requests_received"] == 123 and j["io"]["rx_frames"] == 130
          and j["service_time"]["counts"][2] == 90, f"stats --json: {j}")

    # ---- import
    pop = wfile("pop.txt", "keyline-population 1\nseed 7\nues 3\ngroups 1\nemses 1\nimsis 1\n"
                "appids 1\ne2m-keys 2\nnow 3900000000\nmsk-period 3600\n")
    out, _ = run(["import", pop], sock, 0)
    check(out.startswith("imported 3 ues, 1 groups, 1 emses, 1 imsis (2 e2m keys), 1 appids in "),
          f"import: {out!r}")
    out, _ = run(["count", "--json"], sock, 0)
    check(json.loads(out)["counts"]["ues"] == 5, f"count after import: {out!r}")
    # a population with pair keys: the server (vlr-1.pop.keyline.test) gets its keys with the
    # other peers, its UEs mbms and hm
    popp = wfile("pop-pairs.txt", "keyline-population 1\nseed 7\nues 1\ngroups 0\nemses 0\n"
                 "imsis 0\nappids 0\ne2m-keys 1\nnow 3900000000\nmsk-period 3600\npairs 3\n")
    out, _ = run(["--json", "import", popp], sock, 0)
    check(json.loads(out).get("pairs") == 2, f"import with pairs: {out!r}")
    out, _ = run(["show", "ue", "ue00000000@ims.mnc001.mcc001.3gppnetwork.org", "--json"], sock, 0)
    check(json.loads(out).get("services") == ["mbms", "hm"], f"population UE services: {out!r}")
    for peer in ("vlr-0.pop.keyline.test", "vlr-2.pop.keyline.test"):
        out, _ = run(["show", "pair", peer], sock, 0)
        check(re.search(r"kcv [0-9A-F]{6}\n  expires  never\n", out), f"population pair: {out!r}")
        run(["del", "pair", peer], sock, 0)
    _, err = run(["show", "pair", "vlr-1.pop.keyline.test"], sock, 1)
    check("no such pair entry" in err, f"no pair key with itself: {err!r}")
    bad = wfile("bad.txt", "keyline-population 1\nseed x\n")
    _, err = run(["import", bad], sock, 2)
    check("line 2" in err, f"bad population file: {err!r}")
    big = wfile("big.txt", "keyline-population 1\nseed 7\nues 50\ngroups 0\nemses 0\nimsis 0\n"
                "appids 0\ne2m-keys 1\nnow 3900000000\nmsk-period 3600\n")
    _, err = run(["import", big], sock, 1)
    check("table full for ues" in err, f"import over capacity: {err!r}")

    # ---- server-side refusals: exit 1
    _, err = run(["stats", "--worker", "5"], sock, 1)
    check("out of range" in err, f"stats worker 5: {err!r}")
    _, err = run(["put-ue", "ue3", "--muk", muk.hex(), "--group", "00F110"], sock, 1)
    check("not a key group" in err, f"bad group: {err!r}")
    _, err = run(["put-appid", "app2", "12ab"], sock, 1)
    check("decimal digits" in err, f"bad imsi: {err!r}")
    # --msk-id is the whole MSK ID only (issue 15 item 7); its group must be the group's
    _, err = run(["put-group", "00F110:3", "--msk", msk.hex(), "--msk-id", "0x00040001",
                  "--valid-from", "100", "--valid-to", "200"], sock, 2)
    check("its key group is not DDDDDD:G's (3)" in err, f"msk id group: {err!r}")
    _, err = run(["put-group", "00F110:3", "--msk", msk.hex(), "--msk-id", "5",
                  "--valid-from", "100", "--valid-to", "200"], sock, 2)
    check("the whole MSK ID" in err and "--key-number" in err, f"--msk-id 5: {err!r}")
    _, err = run(["put-group", "00F110:3", "--msk", msk.hex(), "--msk-id", "0x00030005",
                  "--key-number", "5", "--valid-from", "100", "--valid-to", "200"], sock, 2)
    check("not both" in err, f"--msk-id and --key-number: {err!r}")
    _, err = run(["put-group", "00F110:3", "--msk", msk.hex(), "--key-number", "0",
                  "--valid-from", "100", "--valid-to", "200"], sock, 2)
    check("0 is reserved" in err, f"--key-number 0: {err!r}")
    for cur, nxt, want in ((["--key-number", "9"], ["--next-key-number", "12"], (0x30009, 0x3000C)),
                           (["--msk-id", "0x00030007"], ["--next-msk-id", "0x00030001"],
                            (0x30007, 0x30001))):
        run(["put-group", "00F110:3", "--msk", msk.hex()] + cur + ["--valid-from", "100",
            "--valid-to", "200", "--next-msk", msk2.hex()] + nxt, sock, 0)
        out, _ = run(["show", "group", "00F110:3", "--json"], sock, 0)
        j = json.loads(out)
        check((j["current"]["msk_id"], j["next"]["msk_id"]) == want, f"{cur} {nxt}: {j}")
    run(["del", "group", "00f110:3"], sock, 0)
    _, err = run(["show", "ue", "nobody"], sock, 1)
    check("no such ue entry" in err, f"show missing: {err!r}")
    _, err = run(["del", "cat", "x"], sock, 1)
    check("kind: unknown" in err, f"del bad kind: {err!r}")
    out, _ = run(["count", "--json"], sock, 0)
    free = 8 - json.loads(out)["counts"]["emses"]
    check(free > 0, "no room left for the table-full test")
    for i in range(free):
        run(["put-emse", f"e{i}", "--psk", psk.hex()], sock, 0)
    out, err = run(["--json", "put-emse", "e9", "--psk", psk.hex()], sock, 1)
    check(json.loads(out)["ok"] is False and "table full for emses" in err, f"full: {out!r}")

    # ---- deletes
    for kind, ident in (("ue", "ue1@ims.example"), ("group", "00F110:1"),
                        ("emse", "emse1.corp.example"), ("imsi", "001010000000001"),
                        ("appid", "app1@factory.example")):
        out, _ = run(["del", kind, ident], sock, 0)
        check(out == f"{kind} {ident}: deleted\n", f"del {kind}: {out!r}")
        _, err = run(["del", kind, ident], sock, 1)
        check(f"no such {kind} entry" in err, f"del {kind} again: {err!r}")

    pair_and_services(tmp, sock, wfile)

    # ---- usage errors: exit 2, nothing sent
    nofile = os.path.join(tmp, "none.hex")
    short = wfile("short.hex", msk.hex()[:30])
    for args, want in (
        ([], "no command"),
        (["fly"], "unknown command"),
        (["--bogus", "ping"], "unknown option"),
        (["ping", "extra"], "unexpected argument"),
        (["put-ue", "u", "--muk", "00", muk.hex()], "unexpected argument"),  # not echoed
        (["put-ue"], "give the UE's ID"),
        (["put-ue", "u"], "--muk HEX or --muk-file FILE is required"),
        (["put-ue", "u", "--muk", "00", "--muk-file", nofile], "not both"),
        (["put-ue", "u", "--muk", "abc"], "odd number of hex digits"),
        (["put-ue", "u", "--muk", "zz"], "not hex"),
        (["put-ue", "u", "--muk", "00" * 65], "65 bytes, must be 1..64"),
        (["put-ue", "u", "--muk-file", nofile], "cannot read"),
        (["put-ue", "u", "--muk"], "needs a value"),
        (["put-ue", "u", "--color", "red"], "unknown option (argument 5"),
        (["put-ue", "u", "--muk", "00", "--expires", "tomorrow"], "put-ue: --expires: bad time"),
        (["put-ue", "u", "--muk", "00", "--expires", "2085978496"], "out of range"),
        (["put-ue", "u", "--muk", "00", "--expires"], "needs a value"),
        (["put-group", "00F110:1", "--msk-file", short, "--key-number", "1", "--valid-from", "1",
          "--valid-to", "2"], "15 bytes, must be 16"),
        (["put-group", "00F110:1", "--msk", msk.hex(), "--key-number", "1", "--valid-from",
          "yesterday", "--valid-to", "2"], "bad time"),
        (["put-group", "00F110:1", "--msk", msk.hex(), "--valid-from", "1", "--valid-to", "2"],
         "--key-number N or --msk-id ID is required"),
        (["put-group", "00F110:1", "--msk", msk.hex(), "--key-number", "1", "--valid-from", "1",
          "--valid-to", "2085978496"], "out of range"),
        (["put-group", "00F110:1", "--msk", msk.hex(), "--key-number", "1", "--valid-from", "1",
          "--valid-to", "2", "--next-key-number", "3"], "need --next-msk"),
        (["push-e2m", "1", "--key", "00" * 31, "--key-id", "1"], "31 bytes, must be 32"),
        (["push-e2m", "1", "--key", "00" * 32, "--key-id", "x"], "not a number"),
        (["push-e2m", "1", "--key", "00" * 32], "--key-id is required"),
        (["push-e2m", "1", "--key", "00" * 32, "--key-id", "4294967296"], "out of range"),
        (["put-appid", "a"], "give APPID and IMSI"),
        (["del", "ue"], "give KIND"),
        (["show"], "give KIND"),
        (["stats", "--worker", "x"], "not a number"),
        (["import"], "give the population FILE"),
        (["import", nofile], "No such file"),
        (["--timeout", "0", "ping"], "--timeout"),
    ):
        _, err = run(args, sock, 2)
        if want:
            check(want in err, f"{args}: {err!r} lacks {want!r}")
    _, err = run(["-s"], None, 2)
    check("needs a path" in err, f"-s alone: {err!r}")
    _, err = run(["ping"], os.path.join(tmp, "nope.sock"), 2)
    check("cannot connect" in err and "is keylined running?" in err, f"no server: {err!r}")
    _, err = run(["ping"], None, 2, env={"KEYLINE_ADMIN_SOCKET": os.path.join(tmp, "x.sock")})
    check("x.sock" in err, f"env socket: {err!r}")


def pair_and_services(tmp, sock, wfile):
    """Pair keys K(this server, peer) and a UE's services (issue 11 items 2 and 3)."""
    pk = key(32, 21)
    kf = wfile("pair.hex", pk.hex() + "\n")
    out, _ = run(["put-pair", "vlr-1.example", "--key-file", kf, "--expires", "now+3600"], sock, 0)
    check(out == f"pair vlr-1.example: added (kcv {kcv(pk)})\n", f"put-pair: {out!r}")
    t = int(time.time())
    out, _ = run(["show", "pair", "vlr-1.example", "--json"], sock, 0)
    j = json.loads(out)
    check(j["kcv"] == kcv(pk) and t + 3590 <= j["expires"] <= t + 3610, f"show pair: {j}")
    out, _ = run(["show", "pair", "vlr-1.example"], sock, 0)
    check(out.startswith(f"pair vlr-1.example\n  key      kcv {kcv(pk)}\n  expires  20"),
          f"show pair: {out!r}")
    out, _ = run(["put-pair", "vlr-2.example", "--key", key(16, 22).hex()], sock, 0)
    out, _ = run(["show", "pair", "vlr-2.example"], sock, 0)
    check(out.endswith("  expires  never\n"), f"a pair key without expiry: {out!r}")
    out, _ = run(["count", "--json"], sock, 0)
    check(json.loads(out)["counts"].get("pairs") == 2, f"count pairs: {out!r}")
    run(["del", "pair", "vlr-2.example"], sock, 0)
    _, err = run(["show", "pair", "vlr-2.example"], sock, 1)
    check("no such pair entry" in err, f"show deleted pair: {err!r}")
    _, err = run(["put-pair", "vlr-3.example", "--key", "ab" * 65], sock, 2)
    _, err = run(["put-pair", "vlr-3.example"], sock, 2)
    _, err = run(["put-pair"], sock, 2)
    check("give the PEER" in err, f"put-pair usage: {err!r}")
    _, err = run(["put-pair", "vlr-3.example", "--key", pk.hex(), "--expires", "soon"], sock, 2)
    # services: put-ue --services, services ID LIST, show ue
    m = key(32, 23)
    out, _ = run(["--json", "put-ue", "hm@ims.example", "--muk", m.hex(), "--services",
                  "mbms,hm"], sock, 0)
    check(json.loads(out)["services"] == ["mbms", "hm"], f"put-ue --services: {out!r}")
    out, _ = run(["show", "ue", "hm@ims.example"], sock, 0)
    check("\n  services mbms,hm\n" in out, f"show ue services: {out!r}")
    out, _ = run(["services", "hm@ims.example", "hm,dh,prose"], sock, 0)
    check(out == "ue hm@ims.example: services set\n  services hm,dh,prose\n", f"services: {out!r}")
    out, _ = run(["show", "ue", "hm@ims.example", "--json"], sock, 0)
    j = json.loads(out)
    check(j["services"] == ["hm", "dh", "prose"] and j["kcv"] == kcv(m), f"services kept MUK: {j}")
    run(["put-ue", "hm@ims.example", "--muk", m.hex()], sock, 0)
    out, _ = run(["show", "ue", "hm@ims.example", "--json"], sock, 0)
    check(json.loads(out)["services"] == ["mbms"], f"put-ue without --services: {out!r}")
    run(["services", "hm@ims.example", "hm,dh,prose"], sock, 0)
    # dh UEs show their public value's fingerprint (the reference's, dh_reference.py), others
    # none; a put with --services dh and a services change give the same
    fp = dh_reference.dh_pub_fp(dh_reference.dh_pub(m))
    out, _ = run(["show", "ue", "hm@ims.example", "--json"], sock, 0)
    check(json.loads(out).get("dh_pub_fp") == fp, f"dh_pub_fp after services: {out!r}")
    out, _ = run(["show", "ue", "hm@ims.example"], sock, 0)
    check(f"\n  dh pub   fingerprint {fp}\n" in out, f"show ue dh pub: {out!r}")
    m2 = key(32, 24)  # (the table is full: the same UE, another MUK)
    run(["put-ue", "hm@ims.example", "--muk", m2.hex(), "--services", "dh"], sock, 0)
    out, _ = run(["show", "ue", "hm@ims.example", "--json"], sock, 0)
    check(json.loads(out).get("dh_pub_fp") == dh_reference.dh_pub_fp(dh_reference.dh_pub(m2)),
          f"dh_pub_fp after put-ue --services dh: {out!r}")
    run(["services", "hm@ims.example", "mbms"], sock, 0)
    out, _ = run(["show", "ue", "hm@ims.example", "--json"], sock, 0)
    check("dh_pub_fp" not in json.loads(out), f"no dh_pub_fp without dh: {out!r}")
    out, _ = run(["show", "ue", "hm@ims.example"], sock, 0)
    check("dh pub" not in out, f"show ue without dh: {out!r}")
    run(["put-ue", "hm@ims.example", "--muk", m.hex(), "--services", "hm,dh,prose"], sock, 0)
    _, err = run(["services", "hm@ims.example", "mbms,tea"], sock, 1)
    check("services: item 2 is not a service" in err and "mbms,hm,dh,prose" in err,
          f"unknown service: {err!r}")
    _, err = run(["put-ue", "x@ims.example", "--muk", m.hex(), "--services", "hm,hm"], sock, 1)
    check("listed twice" in err, f"repeated service: {err!r}")
    _, err = run(["services", "nobody", "hm"], sock, 1)
    check("no such ue entry" in err, f"services of an unknown UE: {err!r}")
    _, err = run(["services", "hm@ims.example"], sock, 2)
    check("give the UE's ID and the LIST" in err, f"services usage: {err!r}")
    run(["del", "ue", "hm@ims.example"], sock, 0)
    out, _ = run(["del", "pair", "vlr-1.example"], sock, 0)
    check(out == "pair vlr-1.example: deleted\n", f"del pair: {out!r}")


def start_testd(args, logpath):
    log = open(logpath, "a+")
    srv = subprocess.Popen([TESTD] + args, stdout=subprocess.PIPE, stderr=log, text=True)
    ready = srv.stdout.readline().strip()
    check(ready == "ready", f"admin_testd {args} did not start: {ready!r}")
    return srv, log


def stop_testd(srv):
    srv.terminate()
    try:
        rc = srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
        rc = srv.wait()
    check(rc == 0, f"admin_testd exit {rc} on SIGTERM")


def rotation_body(tmp):
    """A second server with a real store, MSK rotation of two groups and a Diameter status."""
    sock = os.path.join(tmp, "rot", "admin.sock")
    kek = os.path.join(tmp, "kek")
    kek_bytes = key(32, 9)
    with open(kek, "wb") as f:
        f.write(kek_bytes)
    os.chmod(kek, 0o600)
    args = [sock, "8", "--store", os.path.join(tmp, "store"), "--kek", kek,
            "--rotate", "00F110:1:3600:600", "--rotate", "00F110:2:60:59", "--diameter"]
    logpath = os.path.join(tmp, "testd-rot.log")
    srv, log = start_testd(args, logpath)
    try:
        # a test population is not stored: the refusal says what to use instead
        pop = os.path.join(tmp, "rot-pop.txt")
        with open(pop, "w") as f:
            f.write("keyline-population 1\nseed 7\nues 3\ngroups 1\nemses 1\nimsis 1\n"
                    "appids 1\ne2m-keys 2\nnow 3900000000\nmsk-period 3600\n")
        _, err = run(["import", pop], sock, 1)
        check("a key store is configured" in err and "-p FILE" in err and "put-ue" in err,
              f"import with a store: {err!r}")
        out, _ = run(["status"], sock, 0)
        check(re.search(r"^table: +0 ues, 2 groups, 0 emses, 0 imsis, 0 appids, 0 pairs; memory \d+ bytes$",
                        out, re.M), f"status table: {out!r}")
        check(re.search(r"^store: +0 ues, 2 groups, 0 emses, 0 imsis, 0 appids, 0 pairs$", out, re.M)
              and f"kek kcv {kcv(kek_bytes)}" in out and "schema 1" in out,
              f"status store: {out!r}")
        check("diameter: keyline.test.example port 3868 (vendor 10415, application 16777999)"
              in out and "answered_ok 41, rejected 2, failed 1, busy 0, commits 17, queued 3, "
              "peers_refused 5" in out, f"status diameter: {out!r}")
        check("peer hss1.test.example  STATE_OPEN" in out
              and "peer hss2.test.example  STATE_CLOSED" in out, f"status peers: {out!r}")
        check("rotation: 2 group(s)" in out
              and "group 00f110:1  period 3600 s, pre-delivery 600 s, 1 rotation(s), 0 failure(s)"
              in out and "group 00f110:2  period 60 s, pre-delivery 59 s" in out,
              f"status rotation: {out!r}")
        check(re.search(r"current +msk_id 0x00010001 \(key 1\)  valid \S+ \.\. \S+  kcv [0-9A-F]{6}",
                        out), f"status current: {out!r}")
        out, _ = run(["status", "--json"], sock, 0)
        j = json.loads(out)
        g1 = j["rotation"]["groups"][0]
        check(j["ok"] and j["store"]["entries"]["groups"] == 2
              and j["store"]["kek_kcv"] == kcv(kek_bytes) and j["diameter"]["peers"][1]["state"]
              == "STATE_CLOSED" and g1["group"] == "00f110:1" and g1["next"] is None
              and g1["current"]["valid_to"] - g1["current"]["valid_from"] == 3600,
              f"status --json: {j}")
        out, _ = run(["show", "group", "00F110:1", "--json"], sock, 0)
        check(json.loads(out)["current"]["kcv"] == g1["current"]["kcv"], f"show vs status: {out!r}")

        # forced rotation
        t0 = int(time.time())
        out, _ = run(["rotate", "00F110:1"], sock, 0)
        m = re.fullmatch(r"group 00f110:1: rotated\n  current  msk_id 0x00010002 \(key 2\)  valid "
                         r"(\S+) \.\. (\S+)  kcv ([0-9A-F]{6})\n", out)
        check(m is not None, f"rotate: {out!r}")
        if m:
            check(m.group(3) != g1["current"]["kcv"], "rotate: same KCV as before")
            out, _ = run(["show", "group", "00F110:1", "--json"], sock, 0)
            sj = json.loads(out)
            check(sj["current"]["kcv"] == m.group(3) and sj["next"] is None
                  and t0 - 1 <= sj["current"]["valid_from"] <= t0 + 5, f"show after rotate: {sj}")
        out, _ = run(["--json", "rotate", "00F110:1"], sock, 0)
        rj = json.loads(out)
        check(rj["ok"] and rj["key_number"] == 3 and rj["msk_id"] == 0x00010003
              and rj["valid_to"] - rj["valid_from"] == 3600 and re.fullmatch("[0-9A-F]{6}", rj["kcv"]),
              f"rotate --json: {rj}")
        _, err = run(["rotate", "00F110:9"], sock, 1)
        check("not a group with MSK rotation" in err, f"rotate unknown group: {err!r}")
        _, err = run(["rotate", "00F110"], sock, 1)
        check("not a key group" in err, f"rotate bad group: {err!r}")
        _, err = run(["rotate"], sock, 2)
        check("give the key group" in err, f"rotate no group: {err!r}")
        _, err = run(["rotate", "00F110:1", "00F110:2"], sock, 2)
        check("unexpected argument" in err, f"rotate two groups: {err!r}")
        _, err = run(["status", "x"], sock, 2)
        check("unexpected argument" in err, f"status arg: {err!r}")
        # a UE's groups one at a time go to the store like every write
        smuk = key(16, 11)
        run(["put-ue", "su@ims.example", "--muk", smuk.hex(), "--group", "00f110:1"], sock, 0)
        run(["group-add", "su@ims.example", "00f110:2"], sock, 0)
        run(["group-add", "su@ims.example", "00f110:9"], sock, 0)
        run(["group-del", "su@ims.example", "00f110:1"], sock, 0)
        # pair keys and services are stored too
        spk = key(32, 24)
        run(["put-pair", "vlr-9.example", "--key", spk.hex(), "--expires", "now+7200"], sock, 0)
        run(["put-pair", "vlr-8.example", "--key", spk.hex()], sock, 0)
        run(["del", "pair", "vlr-8.example"], sock, 0)
        run(["services", "su@ims.example", "mbms,hm"], sock, 0)
        run(["put-ue", "dh@ims.example", "--muk", smuk.hex(), "--services", "dh"], sock, 0)
    finally:
        stop_testd(srv)
    # restart on the same store: the rotated key is served again (it was stored)
    srv, log2 = start_testd(args, logpath)
    try:
        out, _ = run(["status", "--json"], sock, 0)
        g = json.loads(out)["rotation"]["groups"][0]
        check(g["current"]["kcv"] == rj["kcv"] and g["current"]["key_number"] == 3
              and g["rotations"] == 0, f"after restart: {g}")
        out, _ = run(["show", "ue", "su@ims.example", "--json"], sock, 0)
        j = json.loads(out)
        check(j["groups"] == ["00f110:2", "00f110:9"] and j["kcv"] == kcv(smuk),
              f"a UE's groups after group-add/group-del and a restart: {j}")
        check(j["services"] == ["mbms", "hm"], f"a UE's services after a restart: {j}")
        out, _ = run(["show", "ue", "dh@ims.example", "--json"], sock, 0)
        check(json.loads(out)["services"] == ["dh"], f"put-ue --services after a restart: {out}")
        out, _ = run(["show", "pair", "vlr-9.example", "--json"], sock, 0)
        j = json.loads(out)
        check(j["kcv"] == kcv(spk) and j["expires"] > time.time() + 7000,
              f"a pair key after a restart: {j}")
        _, err = run(["show", "pair", "vlr-8.example"], sock, 1)
        check("no such pair entry" in err, f"a deleted pair key after a restart: {err!r}")
    finally:
        stop_testd(srv)
    log.seek(0)
    text = log.read()
    no_secret(text, "rotation server log")
    check(text.count("new MSK 0x00010001") == 1 and "forced rotation" in text
          and "rotate group 00f110:1" in text, f"rotation server log: {text[-2000:]!r}")


def peers_body(tmp):
    """A server whose stats view has three peers with fixed counters (peer i, counter c:
    100 * (i + 1) + c) and a server-to-server state (rendezvous 1024, cache 256, pending 64)."""
    sock = os.path.join(tmp, "peers", "admin.sock")
    srv, log = start_testd([sock, "8", "--peers"], os.path.join(tmp, "testd-peers.log"))
    names = ["sent", "answered", "retried", "failed", "refused", "received"]
    try:
        out, _ = run(["peers"], sock, 0)
        lines = out.splitlines()
        check(lines[0].split() == ["identity", "address:port", "pair", "key"] + names,
              f"peers header: {lines[0]!r}")
        rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:4]}
        want = {"vlr-2.pop.keyline.test": ("192.0.2.20:2269", 1),
                "mme-b.example": ("[2001:db8::b]:2270", 2),
                "vlr-ü.example": ("198.51.100.7:40000", 3)}
        for ident, (addr, i) in want.items():
            r = rows.get(ident)
            check(r is not None and r[0] == addr and r[1] == "no"
                  and r[2:] == [str(100 * i + c) for c in range(6)], f"peers row {ident}: {r!r}")
        check(lines[4:] == ["refused from unconfigured sources: 42"], f"peers tail: {lines[4:]!r}")
        # pair keys: present (its KCV, computed here), expired, absent
        pk = key(32, 40)
        run(["put-pair", "mme-b.example", "--key", pk.hex()], sock, 0)
        run(["put-pair", "vlr-2.pop.keyline.test", "--key", pk.hex(), "--expires",
             str(int(time.time()) + 1)], sock, 0)
        time.sleep(1.2)
        out, _ = run(["peers"], sock, 0)
        rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()[1:4]}
        check(rows["mme-b.example"][1:3] == ["yes", kcv(pk)]
              and rows["mme-b.example"][3] == "200", f"peers with a pair key: {out!r}")
        check(rows["vlr-2.pop.keyline.test"][1:4] == ["yes", kcv(pk), "expired"],
              f"peers with an expired pair key: {out!r}")
        check(rows["vlr-ü.example"][1] == "no", f"peers without a pair key: {out!r}")
        out, _ = run(["--json", "peers"], sock, 0)
        j = json.loads(out)
        p1 = j["peers"][1]
        check(j["ok"] and len(j["peers"]) == 3 and j["unconfigured_refused"] == 42
              and p1 == {"identity": "mme-b.example", "address": "2001:db8::b", "port": 2270,
                         "pair_key": True, "pair_kcv": kcv(pk), "pair_expires": 0,
                         "counters": {n: 200 + c for c, n in enumerate(names)}}
              and j["peers"][2]["identity"] == "vlr-ü.example"
              and j["peers"][2]["pair_key"] is False and "pair_kcv" not in j["peers"][2],
              f"peers --json: {j}")
        out, _ = run(["status"], sock, 0)
        check("s2s:      3 peer(s); rendezvous 0/1024 (full 0), cache 0/256 (full 0), pending "
              "0/64 (full 0); contended 0\n" in out, f"status s2s: {out!r}")
        out, _ = run(["--json", "status"], sock, 0)
        s2s = json.loads(out)["s2s"]
        check(s2s == {"enabled": True, "peers": 3, "contended": 0,
                      "rendezvous": {"used": 0, "capacity": 1024, "full": 0},
                      "cache": {"used": 0, "capacity": 256, "full": 0},
                      "pending": {"used": 0, "capacity": 64, "full": 0}}, f"status --json s2s: {s2s}")
        _, err = run(["peers", "x"], sock, 2)
        check("unexpected argument" in err, f"peers with an argument: {err!r}")
    finally:
        stop_testd(srv)
    log.seek(0)
    no_secret(log.read(), "peers server log")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"{'FAILED' if FAILS else 'ok'}: {len(FAILS)} failure(s) in {time.time() - t0:.1f} s")
    sys.exit(1 if FAILS else 0)
