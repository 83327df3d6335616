#!/usr/bin/env python3
"""Self-test of the mock Cloud API (test/mock/wa_mock.py) over HTTP and HTTPS.

Starts the mock on a free loopback port, exercises every behaviour in PROTOCOL.md with exact
expectations and prints one `ok - NAME` / `not ok - NAME` line per check (test/lib/tap.sh
format).  Exit status 1 when a check failed.  Needs no PostgreSQL; needs the openssl CLI for
the TLS checks.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when importing wa_h2
HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "wa_mock.py")
PNID = "106540352242922"
TOKEN = "test-token"
SECRET = "test-app-secret"
DISPLAY = "15550783881"
WABA = "102290129340398"
PATH = "/v23.0/%s/messages" % PNID

failed = 0
count = 0


def ok(name):
    global count
    count += 1
    print("ok - %s" % name, flush=True)


def not_ok(name, *diag):
    global count, failed
    count += 1
    failed += 1
    print("not ok - %s" % name, flush=True)
    for d in diag:
        for line in str(d).splitlines():
            print("#   %s" % line, flush=True)


def check(name, cond, *diag):
    if cond:
        ok(name)
    else:
        not_ok(name, *diag)


def is_(name, got, want):
    if got == want:
        ok(name)
    else:
        not_ok(name, "got:  %r" % (got,), "want: %r" % (want,))


def start_mock(extra=(), config=None):
    args = [sys.executable, MOCK, "--port", "0"] + list(extra)
    if config is not None:
        fd, cfgpath = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        args += ["--config", cfgpath]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY port="):
        p.kill()
        raise RuntimeError("mock did not start: %r" % line)
    return p, int(line.split("=")[1])


class Client:
    def __init__(self, port, tls_ctx=None, host="127.0.0.1", timeout=10):
        self.port, self.tls_ctx, self.host, self.timeout = port, tls_ctx, host, timeout
        self.conn = None

    def _conn(self):
        if self.conn is None:
            if self.tls_ctx is not None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                        context=self.tls_ctx)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None):
        """-> (status, content_type, parsed JSON or text). Raises on transport errors."""
        c = self._conn()
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        ctype = r.getheader("Content-Type", "")
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        if ctype == "application/json":
            return r.status, ctype, json.loads(data)
        return r.status, ctype, data.decode()

    def send(self, msg, token=TOKEN, path=PATH):
        h = {"Content-Type": "application/json"}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        return self.request("POST", path, msg, h)

    def ctl(self, method, what, body=None):
        st, _, data = self.request(method, "/_mock/" + what, body)
        if st != 200:
            raise RuntimeError("control %s %s -> %d %r" % (method, what, st, data))
        return data


def text(to, body="hello", **extra):
    m = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
         "type": "text", "text": {"body": body}}
    m.update(extra)
    return m


def template(to, name="order_update", params=("Ana",), **extra):
    m = {"messaging_product": "whatsapp", "to": to, "type": "template",
         "template": {"name": name, "language": {"code": "en_US"},
                      "components": [{"type": "body",
                                      "parameters": [{"type": "text", "text": p} for p in params]}]}}
    m.update(extra)
    return m


def error_shape_ok(resp, code):
    """The exact reference error shape; returns a list of problems."""
    problems = []
    if not isinstance(resp, dict) or set(resp) != {"error"}:
        return ["top level is not {error: …}: %r" % (resp,)]
    e = resp["error"]
    want = {"message", "type", "code", "error_data", "fbtrace_id"}
    if set(e) - {"error_subcode"} != want:
        problems.append("keys %r" % sorted(e))
    if e.get("code") != code:
        problems.append("code %r != %r" % (e.get("code"), code))
    if e.get("error_data", {}).get("messaging_product") != "whatsapp" or not e.get("error_data", {}).get("details"):
        problems.append("error_data %r" % (e.get("error_data"),))
    if not isinstance(e.get("fbtrace_id"), str) or not e["fbtrace_id"]:
        problems.append("fbtrace_id")
    return problems


def expect_error(cl, name, msg, status, code, token=TOKEN, path=PATH, subcode=None):
    st, ctype, resp = cl.send(msg, token=token, path=path)
    probs = [] if st == status else ["http status %r != %r" % (st, status)]
    probs += error_shape_ok(resp, code)
    if subcode is not None and resp.get("error", {}).get("error_subcode") != subcode:
        probs.append("error_subcode %r != %r" % (resp.get("error", {}).get("error_subcode"), subcode))
    check(name, not probs, *(probs + ["response: %r" % (resp,)]))
    return resp


def verify_sig(body, sig, secret=SECRET):
    want = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


def pop_all(cl, tamper=None):
    q = "webhooks?max=100000" + ("&tamper=" + tamper if tamper else "")
    return cl.ctl("GET", q)


def statuses_of(deliveries):
    out = []
    for d in deliveries:
        env = json.loads(d["body"])
        for e in env["entry"]:
            for ch in e["changes"]:
                out.extend(ch["value"].get("statuses", []))
    return out


def reset(cl, config=None):
    cl.ctl("POST", "config?replace=1", config or {})
    cl.ctl("POST", "reset")


# --------------------------------------------------------------------------- checks

def t_basics(cl, port):
    reset(cl, {"numbers": {PNID: {"rate_per_second": 0}}})
    is_("health", cl.ctl("GET", "health"), {"ok": True})
    st, _, resp = cl.send(text("+1 (650) 555-1234", biz_opaque_callback_data="row-1"))
    is_("send text: HTTP 200", st, 200)
    check("send text: response shape",
          set(resp) == {"messaging_product", "contacts", "messages"} and resp["messaging_product"] == "whatsapp"
          and resp["contacts"] == [{"input": "+1 (650) 555-1234", "wa_id": "16505551234"}]
          and len(resp["messages"]) == 1 and set(resp["messages"][0]) == {"id"}, resp)
    wamid = resp["messages"][0]["id"]
    raw = base64.b64decode(wamid[len("wamid."):])
    check("wamid: realistic structure", wamid.startswith("wamid.") and len(wamid) <= 128
          and raw[:3] == b"\x1c\x18\x0b" and raw[3:14] == b"16505551234"
          and raw[14:20] == b"\x15\x02\x00\x11\x18\x12" and len(raw) == 39 and raw[-1:] == b"\x00", wamid, raw)
    st, _, resp = cl.send(template("+16505550001"))
    check("send template: message_status accepted",
          st == 200 and resp["messages"][0].get("message_status") == "accepted", resp)
    # version segment optional, any vNN.N accepted
    st1, _, _ = cl.send(text("+16505550002"), path="/%s/messages" % PNID)
    st2, _, _ = cl.send(text("+16505550003"), path="/v17.0/%s/messages" % PNID)
    is_("path with other/no version", (st1, st2), (200, 200))
    msgs = cl.ctl("GET", "messages")
    is_("messages: 4 accepted, in order", [m["seq"] for m in msgs], [1, 2, 3, 4])
    m = msgs[0]
    check("messages: record fields", m["to"] == "+1 (650) 555-1234" and m["wa_id"] == "16505551234"
          and m["type"] == "text" and m["body"]["text"]["body"] == "hello" and m["wamid"] == wamid
          and m["biz_opaque_callback_data"] == "row-1" and m["lost"] is False
          and m["phone_number_id"] == PNID and isinstance(m["received_at"], float)
          and m["planned"] == ["sent", "delivered"] and m["failed_code"] is None, m)
    is_("messages?since=2", [m["seq"] for m in cl.ctl("GET", "messages?since=2")], [3, 4])
    ids = set()
    for i in range(200):
        st, _, resp = cl.send(text("+1651%07d" % i))
        ids.add(resp["messages"][0]["id"])
    is_("wamids unique (200 sends)", len(ids), 200)
    st, _, resp = cl.send({"messaging_product": "whatsapp", "status": "read", "message_id": wamid})
    is_("mark as read -> success, not recorded", (st, resp, len(cl.ctl("GET", "messages"))),
        (200, {"success": True}, 204))
    st, _, resp = cl.request("GET", "/v23.0/%s/messages" % PNID)
    check("GET on /messages -> 400 code 100", st == 400 and not error_shape_ok(resp, 100), st, resp)


def t_auth_validation(cl):
    reset(cl, {"templates": {"order_update": {"languages": ["en_US"], "body_params": 1}}})
    expect_error(cl, "auth: missing token -> 401/190", text("+16505551234"), 401, 190, token=None)
    expect_error(cl, "auth: wrong token -> 401/190", text("+16505551234"), 401, 190, token="nope")
    r = expect_error(cl, "unknown phone_number_id -> 400/100", text("+16505551234"), 400, 100,
                     path="/v23.0/999999/messages", subcode=33)
    is_("unknown phone_number_id: GraphMethodException", r["error"]["type"], "GraphMethodException")
    expect_error(cl, "invalid JSON -> 400/100", "{not json", 400, 100)
    expect_error(cl, "messaging_product missing -> 400/100", {"to": "+16505551234", "type": "text",
                                                              "text": {"body": "x"}}, 400, 100)
    m = text("+16505551234")
    del m["to"]
    expect_error(cl, "to missing -> 400/131008", m, 400, 131008)
    expect_error(cl, "to malformed (letters) -> 400/131009", text("+1650abc1234"), 400, 131009)
    expect_error(cl, "to malformed (too short) -> 400/131009", text("+123456"), 400, 131009)
    expect_error(cl, "to malformed (16 digits) -> 400/131009", text("+1234567890123456"), 400, 131009)
    expect_error(cl, "recipient_type bad -> 400/100", text("+16505551234", recipient_type="crowd"), 400, 100)
    m = text("+16505551234")
    m["type"] = "telegram"
    expect_error(cl, "type unknown -> 400/100", m, 400, 100)
    m = text("+16505551234")
    del m["text"]
    expect_error(cl, "text object missing -> 400/131008", m, 400, 131008)
    expect_error(cl, "text body empty -> 400/131008", text("+16505551234", ""), 400, 131008)
    st, _, _ = cl.send(text("+16505551234", "x" * 4096))
    is_("text body of exactly 4096 chars accepted", st, 200)
    r = expect_error(cl, "text body of 4097 chars -> 400/100", text("+16505551235", "x" * 4097), 400, 100)
    is_("4097: message text", r["error"]["message"], "(#100) Param text['body'] must be at most 4096 characters long.")
    expect_error(cl, "biz_opaque_callback_data > 512 -> 400/131009",
                 text("+16505551236", biz_opaque_callback_data="x" * 513), 400, 131009)
    st, _, _ = cl.send(text("+16505551236", biz_opaque_callback_data="x" * 512))
    is_("biz_opaque_callback_data of 512 accepted", st, 200)
    expect_error(cl, "to = own business number -> 400/131021", text("+" + DISPLAY), 400, 131021)
    m = template("+16505551237")
    del m["template"]["name"]
    expect_error(cl, "template name missing -> 400/131008", m, 400, 131008)
    m = template("+16505551237")
    del m["template"]["language"]
    expect_error(cl, "template language missing -> 400/131008", m, 400, 131008)
    expect_error(cl, "template empty text parameter -> 400/132018", template("+16505551237", params=("  ",)),
                 400, 132018)
    expect_error(cl, "template parameter with newline -> 400/132018", template("+16505551237", params=("a\nb",)),
                 400, 132018)
    expect_error(cl, "template parameter with tab -> 400/132018", template("+16505551237", params=("a\tb",)),
                 400, 132018)
    expect_error(cl, "template parameter with 5 spaces -> 400/132018",
                 template("+16505551237", params=("a     b",)), 400, 132018)
    expect_error(cl, "unknown template -> 404/132001", template("+16505551237", name="nope"), 404, 132001)
    m = template("+16505551237")
    m["template"]["language"]["code"] = "pt_BR"
    expect_error(cl, "template in unknown language -> 404/132001", m, 404, 132001)
    expect_error(cl, "template parameter count -> 400/132000", template("+16505551237", params=("a", "b")),
                 400, 132000)
    st, _, _ = cl.send(template("+16505551237", params=("a    b",)))
    is_("known template with right parameters (4 spaces) accepted", st, 200)
    inter = {"messaging_product": "whatsapp", "to": "+16505551238", "type": "interactive",
             "interactive": {"type": "button", "body": {"text": "Pick"},
                             "action": {"buttons": [{"type": "reply", "reply": {"id": str(i), "title": "B%d" % i}}
                                                    for i in range(4)]}}}
    expect_error(cl, "interactive with 4 buttons -> 400/131009", inter, 400, 131009)
    inter["interactive"]["action"]["buttons"].pop()
    st, _, _ = cl.send(inter)
    is_("interactive with 3 buttons accepted", st, 200)
    img = {"messaging_product": "whatsapp", "to": "+16505551239", "type": "image", "image": {}}
    expect_error(cl, "image without id/link -> 400/131008", img, 400, 131008)
    is_("no rejected request was recorded", len(cl.ctl("GET", "messages")), 4)
    s = cl.ctl("GET", "stats")
    is_("stats: rejected_by_code", s["rejected_by_code"],
        {"190": 2, "100": 6, "131008": 6, "131009": 5, "131021": 1, "132001": 2, "132000": 1, "132018": 4})


def t_rate_limits(cl):
    reset(cl, {"numbers": {PNID: {"token": TOKEN, "rate_per_second": 5, "rate_window_seconds": 3.0,
                                  "pair_limit_seconds": 0}}})
    t0 = time.time()
    res = []
    for i in range(8):
        st, _, resp = cl.send(text("+1652%07d" % i))
        res.append((st, resp["error"]["code"] if st != 200 else 0))
    elapsed = time.time() - t0
    is_("throughput: 5 accepted then 130429 (HTTP 429) within the window", res,
        [(200, 0)] * 5 + [(429, 130429)] * 3)
    if elapsed > 2.5:
        print("# note: the 8 requests took %.2f s (slow machine)" % elapsed)
    r = expect_error(cl, "throughput error shape", text("+16529999999"), 429, 130429)
    is_("throughput message", r["error"]["message"], "(#130429) Rate limit hit")
    time.sleep(max(0.0, t0 + 3.05 - time.time()))
    st, _, _ = cl.send(text("+16528888888"))
    is_("throughput: accepted again after the window", st, 200)
    cl.ctl("POST", "config", {"throttle_http_status": 400})
    for i in range(4):
        cl.send(text("+1653%07d" % i))
    expect_error(cl, "throttle_http_status 400", text("+16537777777"), 400, 130429)

    reset(cl)
    st1, _, _ = cl.send(text("+16505550100"))
    r = expect_error(cl, "pair limit: 2nd message to same recipient -> 429/131056", text("16505550100"),
                     429, 131056, subcode=2494071)
    is_("pair limit: message text", r["error"]["message"],
        "(#131056) (Business Account, Consumer Account) pair rate limit hit")
    st2, _, _ = cl.send(text("+16505550101"))
    is_("pair limit: first sends and another recipient accepted", (st1, st2), (200, 200))
    cl.ctl("POST", "config", {"numbers": {PNID: {"pair_limit_seconds": 1}}})
    cl.ctl("POST", "reset")
    a, _, _ = cl.send(text("+16505550102"))
    b, _, _ = cl.send(text("+16505550102"))
    time.sleep(1.05)
    c, _, _ = cl.send(text("+16505550102"))
    is_("pair limit 1 s: ok, 429, ok after 1 s", (a, b, c), (200, 429, 200))
    cl.ctl("POST", "config", {"numbers": {PNID: {"pair_limit_seconds": 6, "pair_burst": 3}}})
    res = [cl.send(text("+16505550103"))[0] for _ in range(4)]
    is_("pair burst 3: three accepted, 4th 429", res, [200, 200, 200, 429])
    is_("rejected throttled requests not recorded", len(cl.ctl("GET", "messages")), 5)


def t_faults(cl, port):
    def faults(*rules, **cfg):
        c = {"numbers": {PNID: {"pair_limit_seconds": 0, "rate_per_second": 0}}, "faults": list(rules)}
        c.update(cfg)
        reset(cl, c)

    faults({"match": {"nth": 2}, "action": "http_500"})
    r = [cl.send(text("+1654000000%d" % i))[:2] for i in range(3)]
    is_("http_500 on the 2nd request only", r,
        [(200, "application/json"), (500, "text/html"), (200, "application/json")])
    faults({"match": {"every": 2}, "action": "http_503"})
    r = [cl.send(text("+1654000001%d" % i))[0] for i in range(4)]
    is_("http_503 on every 2nd request", r, [200, 503, 200, 503])
    is_("5xx faults not recorded; counted", (len(cl.ctl("GET", "messages")), cl.ctl("GET", "stats")["http_5xx_faults"]),
        (2, 2))
    faults({"match": {"next": 2}, "action": "error", "code": 131000})
    r = [cl.send(text("+1654000002%d" % i)) for i in range(3)]
    is_("error 131000 for the next 2 requests (HTTP 500), then accepted",
        [(x[0], x[2].get("error", {}).get("code")) for x in r], [(500, 131000), (500, 131000), (200, None)])
    check("error 131000: reference shape", not error_shape_ok(r[0][2], 131000), r[0][2])
    for code, status in ((368, 403), (2, 503), (131016, 503), (0, 401), (131048, 400), (131031, 403),
                         (133010, 400), (132001, 404), (131057, 500), (4, 400), (80007, 400)):
        faults({"match": {"next": 1}, "action": "error", "code": code})
        expect_error(cl, "error action code %d -> HTTP %d" % (code, status), text("+16540000030"), status, code)
    faults({"match": {"to": "+16540000041"}, "action": "error", "code": 130497})
    a = cl.send(text("+16540000040"))[0]
    b = cl.send(text("+1 654 000 0041"))[0]
    is_("fault matched by recipient only", (a, b), (200, 403))
    faults({"match": {"type": "template"}, "action": "error", "code": 132015, "http_status": 400})
    a = cl.send(text("+16540000042"))[0]
    b = cl.send(template("+16540000043"))
    is_("fault matched by type, http_status override", (a, b[0], b[2]["error"]["code"]), (200, 400, 132015))

    faults({"match": {"probability": 0.5, "seed": 42}, "action": "http_500"})
    seq1 = [cl.send(text("+1655%07d" % i))[0] for i in range(40)]
    cl.ctl("POST", "reset")
    seq2 = [cl.send(text("+1655%07d" % i))[0] for i in range(40)]
    check("probability 0.5 with seed: deterministic after reset, mixes outcomes",
          seq1 == seq2 and 5 < seq1.count(500) < 35, seq1, seq2)

    # timeout (close at once): the client sees the connection drop, nothing recorded
    faults({"match": {"next": 1}, "action": "timeout", "mode": "close"})
    try:
        cl.send(text("+16540000050"))
        not_ok("timeout/close: connection closed without answer", "got an answer")
    except (http.client.RemoteDisconnected, ConnectionError):
        ok("timeout/close: connection closed without answer")
    # timeout (hold): no answer within the client's timeout
    faults({"match": {"next": 1}, "action": "timeout", "seconds": 2})
    c2 = Client(port, timeout=0.5)
    t0 = time.time()
    try:
        c2.send(text("+16540000051"))
        not_ok("timeout/hold: no answer", "got an answer")
    except (socket.timeout, TimeoutError):
        ok("timeout/hold: no answer")
    c2.close()
    st = cl.send(text("+16540000052"))[0]
    s = cl.ctl("GET", "stats")
    is_("timeouts not recorded, counted; next request fine",
        (len(cl.ctl("GET", "messages")), s["timeouts"], st), (1, 1, 200))

    # lose_response: accepted and recorded, connection dropped
    faults({"match": {"nth": 2}, "action": "lose_response"})
    cl.send(text("+16540000060", biz_opaque_callback_data="q-60"))
    try:
        cl.send(text("+16540000061", biz_opaque_callback_data="q-61"))
        not_ok("lose_response: no answer", "got an answer")
    except (http.client.RemoteDisconnected, ConnectionError):
        ok("lose_response: no answer")
    cl.send(text("+16540000062", biz_opaque_callback_data="q-62"))
    msgs = cl.ctl("GET", "messages")
    is_("lose_response: recorded as accepted (lost=true)",
        [(m["biz_opaque_callback_data"], m["lost"]) for m in msgs],
        [("q-60", False), ("q-61", True), ("q-62", False)])
    sts = statuses_of(pop_all(cl))
    is_("lose_response: its status webhooks are still sent",
        sorted((s["biz_opaque_callback_data"], s["status"]) for s in sts),
        sorted((q, st) for q in ("q-60", "q-61", "q-62") for st in ("sent", "delivered")))
    is_("stats: lost_responses", cl.ctl("GET", "stats")["lost_responses"], 1)

    # async failures
    faults({"match": {"to": "+16540000070"}, "action": "async_fail", "code": 131049},
           {"match": {"to": "+16540000071"}, "action": "async_fail", "code": 131047, "sent_first": True},
           not_on_whatsapp=["+16540000072"])
    r = [cl.send(text("+1654000007%d" % i, biz_opaque_callback_data="a%d" % i)) for i in range(4)]
    is_("async failures are accepted synchronously", [x[0] for x in r], [200] * 4)
    msgs = cl.ctl("GET", "messages")
    is_("planned statuses", [(m["planned"], m["failed_code"]) for m in msgs],
        [(["failed"], 131049), (["sent", "failed"], 131047), (["failed"], 131026), (["sent", "delivered"], None)])
    sts = statuses_of(pop_all(cl))
    got = [(s["biz_opaque_callback_data"], s["status"], s.get("errors", [{}])[0].get("code")) for s in sts]
    is_("async failure webhooks", got,
        [("a0", "failed", 131049), ("a1", "sent", None), ("a1", "failed", 131047), ("a2", "failed", 131026),
         ("a3", "sent", None), ("a3", "delivered", None)])
    e = sts[0]["errors"][0]
    is_("failed status error object", (sorted(e), e["title"] == e["message"], e["href"]),
        (["code", "error_data", "href", "message", "title"], True,
         "/documentation/business-messaging/whatsapp/support/error-codes"))
    is_("failed status 131049 title", e["title"],
        "This message was not delivered to maintain healthy ecosystem engagement.")
    check("failed status has no pricing", "pricing" not in sts[0] and sts[0]["recipient_id"] == "16540000070", sts[0])

    # template pacing: held_for_quality_assessment, then delivered normally or failed 132015
    # (a rule's counter only advances when it is tried: the 2nd rule first sees request 2)
    faults({"match": {"template": "promo", "nth": 1}, "action": "paced"},
           {"match": {"template": "promo", "nth": 1}, "action": "paced", "code": 132015})
    r = [cl.send(template("+1654000008%d" % i, name="promo", biz_opaque_callback_data="p%d" % i))[2]
         for i in range(3)]
    is_("paced: message_status held_for_quality_assessment, then accepted",
        [x["messages"][0]["message_status"] for x in r],
        ["held_for_quality_assessment", "held_for_quality_assessment", "accepted"])
    sts = statuses_of(pop_all(cl))
    is_("paced: statuses (released / dropped with 132015 / normal)",
        [(s["biz_opaque_callback_data"], s["status"], s.get("errors", [{}])[0].get("code")) for s in sts],
        [("p0", "sent", None), ("p0", "delivered", None), ("p1", "failed", 132015),
         ("p2", "sent", None), ("p2", "delivered", None)])
    is_("paced flag in messages", [m["paced"] for m in cl.ctl("GET", "messages")], [True, True, False])

    faults({"match": {"next": 1}, "action": "raw", "http_status": 404, "body_hex": "7bff00fe7d"})
    c = cl._conn()
    c.request("POST", PATH, body=json.dumps(text("+16540000080")),
              headers={"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN})
    r = c.getresponse()
    raw = (r.status, r.read())
    is_("raw: the status and exactly the bytes given", raw, (404, b"{\xff\x00\xfe}"))
    is_("raw: nothing recorded; the next request is accepted",
        (len(cl.ctl("GET", "messages")), cl.send(text("+16540000080"))[0]), (0, 200))
    st, _, resp = cl.request("POST", "/_mock/config", {"faults": [{"action": "raw", "body_hex": "zz"}]})
    check("raw with bad body_hex rejected", st == 400 and "body_hex" in resp["error"], st, resp)

    st, _, resp = cl.request("POST", "/_mock/config", {"faults": [{"action": "explode"}]})
    check("bad fault rule rejected by /_mock/config", st == 400 and "action" in resp["error"], st, resp)
    st, _, resp = cl.request("POST", "/_mock/config", {"bogus": 1})
    is_("unknown config key rejected", st, 400)


def t_webhooks(cl):
    reset(cl, {"webhooks": {"delivered_ratio": 0.5, "read_ratio": 0.5}})
    for i in range(8):
        cl.send(template("+1656%07d" % i, biz_opaque_callback_data="w%d" % i))
    cl.send(text("+16569999999", biz_opaque_callback_data="svc"))
    dels = pop_all(cl)
    check("webhooks: every signature verifies (HMAC-SHA256, app secret)",
          all(verify_sig(d["body"], d["signature"]) for d in dels) and len(dels) > 0, dels[:1])
    check("webhooks: bodies pure ASCII, compact", all(d["body"].isascii() and ", " not in d["body"] for d in dels))
    env = json.loads(dels[0]["body"])
    v = env["entry"][0]["changes"][0]["value"]
    check("webhooks: envelope", env["object"] == "whatsapp_business_account"
          and env["entry"][0]["id"] == "102290129340398" and env["entry"][0]["changes"][0]["field"] == "messages"
          and v["messaging_product"] == "whatsapp"
          and v["metadata"] == {"display_phone_number": DISPLAY, "phone_number_id": PNID}, env)
    sts = statuses_of(dels)
    by = {}
    for s in sts:
        by.setdefault(s["status"], []).append(s)
    is_("exact ratios: 9 sent, floor(9*0.5)=4 delivered, floor(4*0.5)=2 read",
        (len(by["sent"]), len(by["delivered"]), len(by.get("read", []))), (9, 4, 2))
    msgs = {m["wamid"]: m for m in cl.ctl("GET", "messages")}
    good = True
    for s in sts:
        m = msgs[s["id"]]
        if not (s["recipient_id"] == m["wa_id"] and s["biz_opaque_callback_data"] == m["biz_opaque_callback_data"]
                and isinstance(s["timestamp"], str) and s["timestamp"].isdigit()):
            good = False
    check("statuses: id, recipient_id, biz_opaque_callback_data, string timestamp", good, sts[:2])
    priced = {}
    for s in sts:
        if "pricing" in s:
            priced.setdefault(s["id"], []).append(s["status"])
    want = {}
    for w, m in msgs.items():
        p = m["planned"]
        want[w] = ["sent"] + (["delivered"] if "delivered" in p else (["read"] if "read" in p else []))
    is_("pricing on sent and on exactly one of delivered/read", priced, want)
    ps = [s for s in sts if "pricing" in s]
    check("pricing object (template: marketing; text: service/free)",
          all(s["pricing"]["pricing_model"] == "PMP" for s in ps)
          and {s["pricing"]["category"] for s in ps} == {"marketing", "service"}, ps[:2])
    is_("all webhooks popped", cl.ctl("GET", "stats")["webhooks_pending"], 0)
    is_("pop again: empty", pop_all(cl), [])

    reset(cl, {"numbers": {PNID: {"pair_limit_seconds": 0}}, "webhooks": {"batch_size": 3}})
    for i in range(5):
        cl.send(text("+16570000000", biz_opaque_callback_data="b%d" % i))
    dels = cl.ctl("GET", "webhooks?max=2")
    is_("batch_size 3, max=2: two bodies of 3", [d["count"] for d in dels], [3, 3])
    check("batched body holds the statuses", [len(statuses_of([d])) for d in dels] == [3, 3]
          and all(verify_sig(d["body"], d["signature"]) for d in dels))
    dels = pop_all(cl)
    is_("remaining 4 statuses in bodies of 3+1", [d["count"] for d in dels], [3, 1])

    reset(cl, {"webhooks": {"duplicate_ratio": 1.0, "read_ratio": 1.0}})
    cl.send(text("+16570000001"))
    sts = [s["status"] for s in statuses_of(pop_all(cl))]
    is_("duplicate_ratio 1: every status twice", sorted(sts),
        ["delivered", "delivered", "read", "read", "sent", "sent"])
    reset(cl, {"webhooks": {"reorder_ratio": 1.0, "read_ratio": 1.0}})
    cl.send(text("+16570000002"))
    sts = [s["status"] for s in statuses_of(pop_all(cl))]
    is_("reorder_ratio 1: newest status first", sts, ["read", "delivered", "sent"])
    is_("reordered flag in messages", cl.ctl("GET", "messages")[0].get("reordered"), True)

    reset(cl, {"numbers": {PNID: {"pair_limit_seconds": 0}},
               "webhooks": {"read_ratio": 1.0, "skip_delivered_ratio": 0.5}})
    for i in range(4):
        cl.send(text("+16570000010", biz_opaque_callback_data="s%d" % i))
    sts = [(s["biz_opaque_callback_data"], s["status"], "pricing" in s) for s in statuses_of(pop_all(cl))]
    is_("skip_delivered_ratio 0.5: every 2nd read message has no delivered; pricing moves to read", sts,
        [("s0", "sent", True), ("s0", "delivered", True), ("s0", "read", False),
         ("s1", "sent", True), ("s1", "read", True),
         ("s2", "sent", True), ("s2", "delivered", True), ("s2", "read", False),
         ("s3", "sent", True), ("s3", "read", True)])

    reset(cl, {"webhooks": {"delays": {"delivered": 1.5}}})
    t0 = time.time()
    cl.send(text("+16570000003"))
    first = [s["status"] for s in statuses_of(pop_all(cl))]
    if time.time() - t0 > 1.4:
        print("# note: the first pop came late (slow machine); the check below may not mean much")
    time.sleep(max(0.0, t0 + 1.6 - time.time()))
    second = [s["status"] for s in statuses_of(pop_all(cl))]
    is_("delays: delivered only after its delay", (first, second), (["sent"], ["delivered"]))

    reset(cl, {"webhooks": {"batch_size": 1000}})
    sts = [{"id": "wamid.S%d" % i, "status": "delivered", "recipient_id": "1657%07d" % i,
            "biz_opaque_callback_data": str(i), "timestamp": 1750000000 + i} for i in range(2500)]
    sts.append({"id": "wamid.F", "status": "failed", "recipient_id": "16570009999", "code": 131026})
    is_("/_mock/statuses: queued", cl.ctl("POST", "statuses", {"statuses": sts}), {"queued": 2501})
    dels = pop_all(cl)
    got = statuses_of(dels)
    check("/_mock/statuses: batches of 1000, signed, fields as given",
          [d["count"] for d in dels] == [1000, 1000, 501] and all(verify_sig(d["body"], d["signature"]) for d in dels)
          and got[0]["id"] == "wamid.S0" and got[0]["timestamp"] == "1750000000"
          and got[0]["biz_opaque_callback_data"] == "0" and got[-1]["errors"][0]["code"] == 131026, got[:1])
    st, _, _ = cl.request("POST", "/_mock/statuses", {"statuses": [{"id": "x", "status": "failed",
                                                                    "recipient_id": "1"}]})
    is_("/_mock/statuses: failed without code rejected", st, 400)

    # account-level webhooks: one change per body, the number's account, signed
    reset(cl)
    is_("/_mock/account: queued", cl.ctl("POST", "account", {"field": "phone_number_quality_update",
                                                             "value": {"event": "FLAGGED"}, "time": 1765000000}),
        {"queued": 1})
    cl.ctl("POST", "account", {"field": "message_template_status_update",
                               "value": {"event": "PAUSED", "message_template_name": "sale",
                                         "message_template_language": "en_US", "reason": "NONE"}})
    dels = pop_all(cl)
    envs = [json.loads(d["body"]) for d in dels]
    check("/_mock/account: one body per change, the account's id and time, the number's display phone, signed",
          len(dels) == 2 and all(verify_sig(d["body"], d["signature"]) for d in dels)
          and envs[0]["entry"][0]["id"] == WABA and envs[0]["entry"][0]["time"] == 1765000000
          and envs[0]["entry"][0]["changes"] == [{"value": {"event": "FLAGGED", "display_phone_number": DISPLAY},
                                                   "field": "phone_number_quality_update"}]
          and envs[1]["entry"][0]["changes"][0]["field"] == "message_template_status_update", envs)
    st, _, _ = cl.request("POST", "/_mock/account", {"field": "messages", "value": {}})
    st2, _, _ = cl.request("POST", "/_mock/account", {"field": "account_update", "value": "BAN"})
    is_("/_mock/account: unknown field or a value not an object rejected", [st, st2], [400, 400])

    # webhooks_sql.py: the SQL the test harness pipes into psql
    reset(cl, {"numbers": {PNID: {"pair_limit_seconds": 0}}})
    cl.send(text("+16570000005", "it's $wh$ – ok", biz_opaque_callback_data="o'q"))
    cl.ctl("POST", "inbound", {"from": "+16570000005", "text": "$wh$ STOP"})
    r = subprocess.run([sys.executable, os.path.join(HERE, "webhooks_sql.py"), "--url",
                        "http://127.0.0.1:%d" % cl.port, "--all", "--max", "1"],
                       capture_output=True, text=True, timeout=30)
    lines = r.stdout.splitlines()
    okl = r.returncode == 0 and len(lines) == 3 and r.stderr.strip() == "-- 3 deliveries, 3 updates"
    for ln in lines:
        m = re.match(r"^SELECT wam\.ingest_webhook\((\$wh\d*\$)(.*)\1, '(sha256=[0-9a-f]{64})'\);$", ln)
        okl = okl and m is not None and m.group(2).find(m.group(1)) < 0 and verify_sig(m.group(2), m.group(3))
    check("webhooks_sql.py: one SELECT per delivery, dollar quote safe, signature verifies", okl,
          r.stdout, r.stderr)

    reset(cl)
    cl.send(text("+16570000004"))
    d1 = cl.ctl("GET", "webhooks?max=1&tamper=signature")[0]
    d2 = cl.ctl("GET", "webhooks?max=1&tamper=body")[0]
    check("tamper=signature / tamper=body: verification fails",
          not verify_sig(d1["body"], d1["signature"]) and not verify_sig(d2["body"], d2["signature"])
          and d1["tampered"] == "signature" and json.loads(d2["body"])["object"] == "whatsapp_business_account",
          d1, d2)


def t_inbound(cl):
    reset(cl, {"enforce_csw": True, "numbers": {PNID: {"pair_limit_seconds": 0}}})
    w = cl.ctl("POST", "inbound", {"from": "+16505551234", "name": "Zoë", "text": "Olá ✓ STOP",
                                   "context_id": "wamid.ABC"})
    check("inbound: returns an inbound wamid", w["wamid"].startswith("wamid.")
          and base64.b64decode(w["wamid"][6:])[14:20] == b"\x15\x02\x00\x12\x18\x14", w)
    d = pop_all(cl)
    is_("inbound: one delivery", len(d), 1)
    body = d[0]["body"]
    check("inbound: non-ASCII escaped as lowercase \\uXXXX and signed as sent",
          body.isascii() and "Ol\\u00e1 \\u2713 STOP" in body and "Zo\\u00eb" in body
          and verify_sig(body, d[0]["signature"]), body)
    v = json.loads(body)["entry"][0]["changes"][0]["value"]
    is_("inbound: contacts", v["contacts"], [{"profile": {"name": "Zoë"}, "wa_id": "16505551234"}])
    m = v["messages"][0]
    check("inbound: message", m["from"] == "16505551234" and m["id"] == w["wamid"] and m["type"] == "text"
          and m["text"] == {"body": "Olá ✓ STOP"} and m["context"] == {"from": DISPLAY, "id": "wamid.ABC"}
          and m["timestamp"].isdigit() and "statuses" not in v, v)
    cl.ctl("POST", "inbound", {"user_id": "US.13491208655302741918", "text": "hi"})
    v = json.loads(pop_all(cl)[0]["body"])["entry"][0]["changes"][0]["value"]
    check("inbound with BSUID: from_user_id, contacts.user_id, no phone",
          v["messages"][0]["from_user_id"] == "US.13491208655302741918" and "from" not in v["messages"][0]
          and v["contacts"][0]["user_id"] == "US.13491208655302741918" and "wa_id" not in v["contacts"][0], v)
    st, _, resp = cl.request("POST", "/_mock/inbound", {"text": "x"})
    is_("inbound without from/user_id rejected", st, 400)
    cl.send(text("+16505551234"))          # window open (inbound above)
    cl.send(text("+16505550999"))          # no window: async 131047
    cl.send(template("+16505550999"))      # templates need no window
    is_("enforce_csw: free-form outside the window fails with 131047",
        [m["failed_code"] for m in cl.ctl("GET", "messages")], [None, 131047, None])


def t_reset_stats(cl, port):
    reset(cl, {"numbers": {PNID: {"rate_per_second": 0}}})
    c2 = Client(port)
    for i in range(5):
        c2.send(text("+1658000000%d" % i))
    before = cl.ctl("GET", "stats")
    c2.close()
    check("stats: counts and per-second histogram",
          before["accepted"] == 5 and before["by_http_status"].get("200") == 5
          and sum(x[2] for x in before["per_second"]) == 5 and before["webhooks_pending"] == 10
          and before["max_connections"] >= 2, before)
    st = cl.send(text("+16580000000"))[0]
    is_("pair state before reset: 429", st, 429)
    cl.ctl("POST", "reset")
    s = cl.ctl("GET", "stats")
    is_("reset: messages, webhooks, counters forgotten",
        (cl.ctl("GET", "messages"), s["accepted"], s["webhooks_pending"], s["rejected_by_code"], s["per_second"]),
        ([], 0, 0, {}, []))
    is_("reset: pair state forgotten", cl.send(text("+16580000000"))[0], 200)
    is_("reset keeps the configuration", cl.ctl("GET", "config")["numbers"][PNID]["rate_per_second"], 0)


def t_http(cl, port):
    reset(cl)
    # keep-alive: one connection for many requests
    c2 = Client(port)
    before = cl.ctl("GET", "stats")["connections_total"]
    for i in range(10):
        c2.send(text("+1659000000%d" % i))
    after = cl.ctl("GET", "stats")["connections_total"]
    c2.close()
    is_("keep-alive: 10 requests on one connection", after - before, 1)
    # Expect: 100-continue (libcurl sends it for larger bodies)
    body = json.dumps(text("+16590000100", "y" * 3000)).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (PATH, TOKEN, len(body))).encode())
    first = s.recv(4096)
    s.sendall(body)
    rest = b""
    while b"\r\n\r\n" not in rest or not rest.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    check("Expect: 100-continue answered, then 200", first == b"HTTP/1.1 100 Continue\r\n\r\n"
          and rest.startswith(b"HTTP/1.1 200 OK"), first, rest[:200])
    # HTTP/1.0 without keep-alive: answered then closed
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /_mock/health HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    check("HTTP/1.0: answered and closed", data.startswith(b"HTTP/1.1 200") and data.endswith(b'{"ok":true}'), data)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    data = s.recv(65536)
    s.close()
    check("chunked request refused with 501", data.startswith(b"HTTP/1.1 501"), data)


def t_tls():
    if shutil.which("openssl") is None:
        not_ok("TLS: openssl CLI available (Debian package openssl)")
        return
    d = tempfile.mkdtemp(prefix="wa_mock_ca.")
    try:
        r = subprocess.run(["bash", os.path.join(HERE, "make_test_ca.sh"), d], capture_output=True, text=True)
        if r.returncode != 0:
            not_ok("TLS: make_test_ca.sh", r.stdout, r.stderr)
            return
        ok("TLS: make_test_ca.sh")
        other = "123456789012345"
        p, port = start_mock(["--tls-cert", os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server.key")],
                             config={"numbers": {other: {"token": "tok-2", "app_secret": "sec-2",
                                                         "display_phone_number": "15550001111"}}})
        try:
            ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
            for host in ("localhost", "127.0.0.1"):
                c = Client(port, tls_ctx=ctx, host=host)
                st, _, resp = c.send(text("+16600000000" if host == "localhost" else "+16600000001"),
                                     token="tok-2", path="/v23.0/%s/messages" % other)
                c.close()
                is_("TLS with the test CA (%s), --config number" % host, st, 200)
            c = Client(port, tls_ctx=ctx)
            d1 = c.ctl("GET", "webhooks?max=1")
            c.close()
            check("TLS: webhook signed with that number's app secret",
                  verify_sig(d1[0]["body"], d1[0]["signature"], "sec-2"), d1)
            c = Client(port, tls_ctx=ssl.create_default_context())
            try:
                c.send(text("+16600000002"), token="tok-2", path="/v23.0/%s/messages" % other)
                not_ok("TLS: untrusted without the test CA")
            except ssl.SSLCertVerificationError:
                ok("TLS: untrusted without the test CA")
            c.close()
            t_loadgen(port, os.path.join(d, "ca.pem"), other, ctx)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def t_hpack():
    sys.path.insert(0, HERE)
    import wa_h2
    # RFC 7541 Appendix C.4: requests with Huffman coding, sharing one dynamic table
    d = wa_h2.HpackDecoder()
    r1 = d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
    r2 = d.decode(bytes.fromhex("828684be5886a8eb10649cbf"))
    r3 = d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
    is_("HPACK: RFC 7541 C.4 request 1", r1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
                                               (b":authority", b"www.example.com")])
    is_("HPACK: RFC 7541 C.4 request 2 (dynamic table)", r2[-1], (b"cache-control", b"no-cache"))
    is_("HPACK: RFC 7541 C.4 request 3, table size 164", (r3[-1], d.size), ((b"custom-key", b"custom-value"), 164))
    every = bytes(range(256))
    is_("Huffman: round trip of all 256 octets", wa_h2.huffman_decode(wa_h2.huffman_encode(every)), every)
    for name, bad in (("padding of 8+ bits", bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ffff")),
                      ("padding not all ones", bytes.fromhex("f1e3c2e5f23a6ba0ab90f4fe"))):
        try:
            wa_h2.huffman_decode(bad)
            not_ok("Huffman: reject " + name)
        except wa_h2.HpackError:
            ok("Huffman: reject " + name)
    try:
        wa_h2.HpackDecoder().decode(bytes([0x80 | 70]))
        not_ok("HPACK: reject index beyond the tables")
    except wa_h2.HpackError:
        ok("HPACK: reject index beyond the tables")


def t_h2_raw(cl, port):
    """HTTP/2 with prior knowledge over plain TCP, driven frame by frame: flow control
    (a 100-byte stream window stalls the response until WINDOW_UPDATE), PING, POST."""
    sys.path.insert(0, HERE)
    import wa_h2 as h
    reset(cl, {"numbers": {PNID: {"rate_per_second": 0, "pair_limit_seconds": 0}}})
    for i in range(20):
        cl.send(text("+1661000%04d" % i))
    want = cl.ctl("GET", "messages")

    def hdr(idx, value):  # literal header field without indexing, indexed name, no Huffman
        v = value.encode()
        head = bytes([idx]) if idx < 15 else bytes([0x0F, idx - 15])
        return head + bytes([len(v)]) + v

    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf = bytearray()

    def frames(done, quiet=0.3, limit=10.0):
        """Read frames until done(frames) holds (or `limit` s), then `quiet` s more."""
        out = []
        end = time.time() + limit
        quiet_end = None
        while True:
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                ln = int.from_bytes(buf[:3], "big")
                out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big"), bytes(buf[9:9 + ln])))
                del buf[:9 + ln]
            now = time.time()
            if quiet_end is None and (done(out) or now >= end):
                quiet_end = now + quiet
            if quiet_end is not None and now >= quiet_end:
                return out
            s.settimeout(max(0.01, (quiet_end or end) - now))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                return out
            buf.extend(chunk)

    def data_len(fr, sid):
        return sum(len(p) for t, f, i, p in fr if t == h.DATA and i == sid)

    def ended(fr, sid):
        return any(t == h.DATA and i == sid and f & h.END_STREAM for t, f, i, p in fr)

    get = b"\x82\x86" + hdr(4, "/_mock/messages") + hdr(1, "127.0.0.1")
    s.sendall(h.PREFACE + h.frame(h.SETTINGS, 0, 0, (4).to_bytes(2, "big") + (100).to_bytes(4, "big"))
              + h.frame(h.HEADERS, h.END_STREAM | h.END_HEADERS, 1, get))
    fr = frames(lambda fr: data_len(fr, 1) >= 100)
    kinds = [(t, f, sid) for t, f, sid, _ in fr]
    data1 = b"".join(p for t, f, sid, p in fr if t == h.DATA and sid == 1)
    hd = [p for t, f, sid, p in fr if t == h.HEADERS and sid == 1]
    status = dict(h.HpackDecoder().decode(hd[0])) if hd else {}
    check("h2 prior knowledge: SETTINGS, SETTINGS ACK, HEADERS :status 200",
          (h.SETTINGS, 0, 0) in kinds and (h.SETTINGS, h.ACK, 0) in kinds
          and status.get(b":status") == b"200" and status.get(b"content-type") == b"application/json", kinds)
    is_("h2 flow control: response stalls after the 100-byte stream window", len(data1), 100)
    s.sendall(h.frame(h.WINDOW_UPDATE, 0, 1, (1 << 20).to_bytes(4, "big"))
              + h.frame(h.WINDOW_UPDATE, 0, 0, (1 << 20).to_bytes(4, "big"))
              + h.frame(h.PING, 0, 0, b"pingpong"))
    fr = frames(lambda fr: ended(fr, 1) and any(t == h.PING for t, f, i, p in fr), quiet=0)
    data2 = b"".join(p for t, f, sid, p in fr if t == h.DATA and sid == 1)
    ends = [f & h.END_STREAM for t, f, sid, p in fr if t == h.DATA and sid == 1]
    check("h2 flow control: the rest after WINDOW_UPDATE, END_STREAM, same JSON as HTTP/1.1",
          ends and ends[-1] and json.loads(data1 + data2) == want, len(data1 + data2), ends)
    check("h2 PING answered with ACK and the same payload",
          (h.PING, h.ACK, 0, b"pingpong") in fr, [x[:3] for x in fr])
    body = json.dumps(text("+16610009999")).encode()
    post = (b"\x83\x86" + hdr(4, PATH) + hdr(1, "127.0.0.1") + hdr(23, "Bearer " + TOKEN)
            + hdr(31, "application/json") + hdr(28, str(len(body))))
    s.sendall(h.frame(h.SETTINGS, 0, 0, (4).to_bytes(2, "big") + (65535).to_bytes(4, "big"))
              + h.frame(h.HEADERS, h.END_HEADERS, 3, post) + h.frame(h.DATA, 0, 3, body[:10])
              + h.frame(h.DATA, h.END_STREAM, 3, body[10:]))
    fr = frames(lambda fr: ended(fr, 3), quiet=0)
    hd = [p for t, f, sid, p in fr if t == h.HEADERS and sid == 3]
    resp = b"".join(p for t, f, sid, p in fr if t == h.DATA and sid == 3)
    check("h2 POST /messages (body in 2 DATA frames) accepted",
          hd and dict(h.HpackDecoder().decode(hd[0])).get(b":status") == b"200"
          and json.loads(resp)["contacts"][0]["wa_id"] == "16610009999", fr)
    s.sendall(h.frame(h.GOAWAY, 0, 0, (0).to_bytes(8, "big")))
    s.close()


def t_loadgen(port, cafile, pnid, ctx):
    """The C load tool (libcurl multi) over TLS: HTTP/1.1 and HTTP/2 (ALPN), exact counts."""
    if shutil.which("gcc") is None:
        not_ok("loadgen: gcc available (build-essential)")
        return
    d = tempfile.mkdtemp(prefix="wa_loadgen.")
    try:
        exe = os.path.join(d, "loadgen")
        r = subprocess.run(["bash", os.path.join(HERE, "build_loadgen.sh"), exe], capture_output=True, text=True)
        if r.returncode != 0:
            not_ok("loadgen: build (libcurl4-openssl-dev)", r.stdout, r.stderr)
            return
        ok("loadgen: build")
        c = Client(port, tls_ctx=ctx)
        url = "https://localhost:%d/v23.0/%s/messages" % (port, pnid)
        for proto in ("h1", "h2"):
            reset(c, {"numbers": {pnid: {"token": "tok-2", "app_secret": "sec-2", "rate_per_second": 0}}})
            r = subprocess.run([exe, url, "tok-2", "16", "300", "100000", cafile, proto],
                               capture_output=True, text=True, timeout=60)
            s = c.ctl("GET", "stats")
            check("loadgen %s: 300 requests, all 200, all recorded" % proto,
                  r.returncode == 0 and "transport_errors=0 http_200=300" in r.stdout
                  and s["accepted"] == 300 and len(c.ctl("GET", "messages")) == 300
                  and (s["h2_connections"] == 1 if proto == "h2" else s["h2_connections"] == 0),
                  r.stdout, r.stderr, s)
        # Faults on an HTTP/2 connection reset only the stream, not the other requests on it.
        reset(c, {"numbers": {pnid: {"token": "tok-2", "app_secret": "sec-2", "rate_per_second": 0}},
                  "faults": [{"match": {"nth": 7}, "action": "lose_response"},
                             {"match": {"nth": 9}, "action": "timeout", "seconds": 0.5}]})
        r = subprocess.run([exe, url, "tok-2", "16", "100", "100000", cafile, "h2"],
                           capture_output=True, text=True, timeout=60)
        msgs = c.ctl("GET", "messages")
        check("h2 lose_response/timeout: RST_STREAM for those two only; the lost one recorded",
              "transport_errors=2 http_200=98" in r.stdout and len(msgs) == 99
              and sum(1 for m in msgs if m["lost"]) == 1 and c.ctl("GET", "stats")["h2_connections"] == 1,
              r.stdout, r.stderr)
        c.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    t_start = time.time()
    p, port = start_mock()
    try:
        cl = Client(port)
        for t in (lambda: t_basics(cl, port), lambda: t_auth_validation(cl), lambda: t_rate_limits(cl),
                  lambda: t_faults(cl, port), lambda: t_webhooks(cl), lambda: t_inbound(cl),
                  lambda: t_reset_stats(cl, port), lambda: t_http(cl, port), lambda: t_h2_raw(cl, port)):
            try:
                t()
            except Exception as e:  # one broken group must not hide the others
                import traceback
                not_ok("no exception in a test group", traceback.format_exc())
                cl.close()
        cl.close()
    finally:
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "killed"
    is_("SIGTERM: clean exit 0", (rc, time.time() - t0 < 5), (0, True))
    t_hpack()
    t_tls()
    print("# %d checks, %d failed, %.1f s" % (count, failed, time.time() - t_start))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
