#!/bin/bash
# test/mock/make_test_ca.sh OUTDIR — a throwaway test CA and a server certificate for the mock.
#
# Writes OUTDIR/ca.pem (trust this: the worker's test CA file / curl --cacert), OUTDIR/ca.key,
# OUTDIR/server.pem and OUTDIR/server.key (for wa_mock.py --tls-cert/--tls-key; SAN
# DNS:localhost and IP:127.0.0.1), all valid for 30 days. Needs the openssl CLI (Debian
# package openssl). Keys are unencrypted: for tests only, never for anything real.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
mkdir -p "$out"
cd "$out"

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 \
    -keyout ca.key -out ca.pem -subj "/CN=pg_wamarketing test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey rsa:2048 -nodes -sha256 \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null

cat >server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 30 -sha256 -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 600 ca.key server.key
# The worker runs as the PostgreSQL OS user (e.g. wamtest) and must read ca.pem; the caller
# must also make OUTDIR's parent directories searchable (mktemp -d makes them 0700).
chmod 755 .
chmod 644 ca.pem server.pem
openssl verify -CAfile ca.pem server.pem >/dev/null
echo "test CA: $out/ca.pem; server cert: $out/server.pem, key: $out/server.key"
