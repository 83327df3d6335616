#!/usr/bin/env python3
"""Pop signed webhook deliveries from the mock and print them as SQL for psql.

    python3 test/mock/webhooks_sql.py --url http://127.0.0.1:PORT [--cacert CA.pem]
        [--max N] [--all] [--tamper signature|body] [--function wam.ingest_webhook]
    ... | psql -X -v ON_ERROR_STOP=1 -f -

Each delivery becomes one statement
    SELECT wam.ingest_webhook($wh$<raw body, byte for byte as signed>$wh$, 'sha256=<hex>');
The body is pure ASCII JSON (the mock escapes non-ASCII as \\uXXXX, as Meta does), so dollar
quoting passes it to the function unchanged. --all repeats until nothing is pending (only
what is already due). Prints `-- N deliveries, M updates` to stderr.
"""

import argparse
import json
import ssl
import sys
import urllib.request


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="base URL of the mock, e.g. http://127.0.0.1:18100")
    ap.add_argument("--cacert", help="CA file when the mock serves HTTPS")
    ap.add_argument("--max", type=int, default=1000, help="deliveries per request to the mock")
    ap.add_argument("--all", action="store_true", help="repeat until nothing is pending")
    ap.add_argument("--tamper", choices=("signature", "body"))
    ap.add_argument("--function", default="wam.ingest_webhook")
    args = ap.parse_args()
    ctx = ssl.create_default_context(cafile=args.cacert) if args.cacert else None
    q = "%s/_mock/webhooks?max=%d" % (args.url.rstrip("/"), args.max)
    if args.tamper:
        q += "&tamper=" + args.tamper
    n = updates = 0
    out = sys.stdout
    while True:
        with urllib.request.urlopen(q, context=ctx, timeout=60) as r:
            batch = json.load(r)
        for d in batch:
            body = d["body"]
            tag = "$wh$"
            i = 0
            while tag in body:
                i += 1
                tag = "$wh%d$" % i
            out.write("SELECT %s(%s%s%s, '%s');\n" % (args.function, tag, body, tag, d["signature"]))
            n += 1
            updates += d["count"]
        if not args.all or not batch:
            break
    out.flush()
    print("-- %d deliveries, %d updates" % (n, updates), file=sys.stderr)


if __name__ == "__main__":
    main()
