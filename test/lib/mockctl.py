#!/usr/bin/env python3
"""test/lib/mockctl.py — talk to the mock Cloud API (test/mock/wa_mock.py) over TLS.

    mockctl.py BASE CAFILE get PATH            print the JSON answer of GET BASE+PATH
    mockctl.py BASE CAFILE post PATH JSON      POST JSON, print the answer
    mockctl.py BASE CAFILE webhooks-sql [MAX [TAMPER]]
                                               pop due webhook deliveries and print one
                                               `SELECT wam.ingest_webhook(body, signature);`
                                               per delivery (bodies passed byte for byte);
                                               TAMPER (signature|body): one batch, spoilt
    mockctl.py BASE CAFILE wait-idle           wait until no webhook is pending (max 10 s)

BASE is like https://localhost:18250. Python standard library only.
"""
import json
import ssl
import sys
import time
import urllib.request


def call(base, ctx, method, path, data=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if data is None else data.encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return r.read().decode()


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def main():
    base, cafile, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = ssl.create_default_context(cafile=cafile)
    if cmd == "get":
        print(call(base, ctx, "GET", sys.argv[4]))
    elif cmd == "post":
        print(call(base, ctx, "POST", sys.argv[4], sys.argv[5]))
    elif cmd == "webhooks-sql":
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
        tamper = sys.argv[5] if len(sys.argv) > 5 else None
        total = 0
        while True:
            batch = json.loads(call(base, ctx, "GET", "/_mock/webhooks?max=%d%s"
                                    % (n, "&tamper=" + tamper if tamper else "")))
            if not batch:
                break
            for d in batch:
                print("SELECT wam.ingest_webhook(%s, %s);" % (sql_literal(d["body"]), sql_literal(d["signature"])))
                total += 1
            if tamper:
                break
        print("-- %d deliveries" % total)
    elif cmd == "wait-idle":
        for _ in range(100):
            st = json.loads(call(base, ctx, "GET", "/_mock/stats"))
            if st.get("webhooks_pending", 0) == 0:
                break
            time.sleep(0.1)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
