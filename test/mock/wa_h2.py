"""Minimal HTTP/2 server side (RFC 9113) with an HPACK decoder (RFC 7541) for the mock.

Why: on this project's machines each loopback HTTP/1.1 round trip costs the server a recv and
a send system call, which bounds a Python server far below the sender's target rate.  libcurl
multiplexes requests over one HTTP/2 connection when the server offers it (ALPN "h2" over TLS,
or prior knowledge over plain TCP), so the mock reads many requests per recv and answers them
with one send.  Only what libcurl and curl(1) use is implemented: no server push, no priority
handling (PRIORITY frames are ignored), no h2c Upgrade (such requests are answered in
HTTP/1.1, which RFC 9113 allows).  Written from the RFCs; Python standard library only.
"""

import sys
from collections import deque

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 section 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
# Error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x6, 0x7, 0x8, 0x9

OUR_MAX_STREAMS = 1000
OUR_STREAM_WINDOW = 1 << 24
OUR_CONN_WINDOW = 1 << 30
MAX_FRAME = 16384  # ours (the default): we never raise SETTINGS_MAX_FRAME_SIZE

# --------------------------------------------------------------------------- HPACK

# Code length of each symbol 0..256 of the HPACK Huffman code (RFC 7541 Appendix B).  The code
# is canonical (codes assigned in order of length, then symbol), so the lengths determine it.
_HUFF_LENGTHS = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5,
    6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6,
    7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23,
    23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22,
    22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
    23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27,
    27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25,
    24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30)


def _huffman_tables():
    order = sorted(range(257), key=lambda s: (_HUFF_LENGTHS[s], s))
    codes = {}
    code = 0
    prev = _HUFF_LENGTHS[order[0]]
    for i, s in enumerate(order):
        if i:
            code = (code + 1) << (_HUFF_LENGTHS[s] - prev)
        prev = _HUFF_LENGTHS[s]
        codes[s] = code
    dec = [dict() for _ in range(31)]
    for s, c in codes.items():
        dec[_HUFF_LENGTHS[s]][c] = s
    return codes, dec


HUFF_CODES, _HUFF_DEC = _huffman_tables()
_HUFF_LENS_PRESENT = [n for n in range(31) if _HUFF_DEC[n]]
_huff_cache = {}


class HpackError(Exception):
    pass


def huffman_decode(data):
    hit = _huff_cache.get(data)
    if hit is not None:
        return hit
    acc = int.from_bytes(data, "big")
    pos = len(data) * 8
    out = bytearray()
    dec = _HUFF_DEC
    while pos > 0:
        for n in _HUFF_LENS_PRESENT:
            if n > pos:
                n = 0
                break
            sym = dec[n].get((acc >> (pos - n)) & ((1 << n) - 1))
            if sym is not None:
                break
        else:
            n = 0
        if n == 0:
            # What is left must be padding: the most significant bits of EOS (all ones), < 8 bits.
            if pos >= 8 or (acc & ((1 << pos) - 1)) != (1 << pos) - 1:
                raise HpackError("invalid Huffman padding")
            break
        if sym == 256:
            raise HpackError("EOS in Huffman string")
        out.append(sym)
        pos -= n
    res = bytes(out)
    if len(_huff_cache) > 4096:
        _huff_cache.clear()
    _huff_cache[data] = res
    return res


def huffman_encode(data):
    acc = 0
    nbits = 0
    for b in data:
        n = _HUFF_LENGTHS[b]
        acc = (acc << n) | HUFF_CODES[b]
        nbits += n
    pad = (-nbits) % 8
    acc = (acc << pad) | ((1 << pad) - 1)
    return (acc).to_bytes((nbits + pad) // 8, "big")


STATIC_TABLE = [(b"", b"")] + [(n.encode(), v.encode()) for n, v in (
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
    (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
    ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
    ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
    ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
    ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
    ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
    ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""))]
assert len(STATIC_TABLE) == 62


def _int(b, i, prefix):
    mask = (1 << prefix) - 1
    v = b[i] & mask
    i += 1
    if v < mask:
        return v, i
    m = 0
    while True:
        if i >= len(b) or m > 28:
            raise HpackError("bad integer")
        c = b[i]
        i += 1
        v += (c & 0x7F) << m
        m += 7
        if not c & 0x80:
            return v, i


def _str(b, i):
    if i >= len(b):
        raise HpackError("truncated string")
    huff = b[i] & 0x80
    n, i = _int(b, i, 7)
    if i + n > len(b):
        raise HpackError("truncated string")
    s = bytes(b[i:i + n])
    return (huffman_decode(s) if huff else s), i + n


class HpackDecoder:
    def __init__(self, max_size=4096):
        self.limit = max_size     # what we allow (SETTINGS_HEADER_TABLE_SIZE, default)
        self.max_size = max_size  # current, as set by the encoder
        self.size = 0
        self.dyn = deque()        # newest first

    def _get(self, idx):
        if idx <= 0:
            raise HpackError("index 0")
        if idx < 62:
            return STATIC_TABLE[idx]
        idx -= 62
        if idx >= len(self.dyn):
            raise HpackError("index out of range")
        return self.dyn[idx]

    def _evict(self):
        while self.size > self.max_size and self.dyn:
            n, v = self.dyn.pop()
            self.size -= len(n) + len(v) + 32

    def _add(self, name, value):
        self.dyn.appendleft((name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def decode(self, b):
        out = []
        i = 0
        ln = len(b)
        dyn = self.dyn
        while i < ln:
            c = b[i]
            if c & 0x80:
                if c != 0xFF:   # fast path: one-byte index (the common case)
                    idx = c & 0x7F
                    i += 1
                    if 0 < idx < 62:
                        out.append(STATIC_TABLE[idx])
                        continue
                    if 62 <= idx < 62 + len(dyn):
                        out.append(dyn[idx - 62])
                        continue
                    raise HpackError("index %d out of range" % idx)
                idx, i = _int(b, i, 7)
                out.append(self._get(idx))
            elif c & 0x40:
                idx, i = _int(b, i, 6)
                name = self._get(idx)[0] if idx else None
                if name is None:
                    name, i = _str(b, i)
                value, i = _str(b, i)
                self._add(name, value)
                out.append((name, value))
            elif c & 0x20:
                size, i = _int(b, i, 5)
                if size > self.limit:
                    raise HpackError("table size update above the limit")
                self.max_size = size
                self._evict()
            else:
                idx, i = _int(b, i, 4)
                name = self._get(idx)[0] if idx else None
                if name is None:
                    name, i = _str(b, i)
                value, i = _str(b, i)
                out.append((name, value))
        return out


def _enc_int(v, prefix, first):
    mask = (1 << prefix) - 1
    if v < mask:
        return bytes([first | v])
    out = bytearray([first | mask])
    v -= mask
    while v >= 128:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


_STATUS_INDEX = {200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14}


_resp_cache = {}


def encode_response_headers(status, ctype, length):
    """HPACK block for a response; no dynamic table, no Huffman (both optional for encoders)."""
    key = (status, ctype, length)
    hit = _resp_cache.get(key)
    if hit is None:
        if len(_resp_cache) > 10000:
            _resp_cache.clear()
        hit = _resp_cache[key] = _encode_response_headers(status, ctype, length)
    return hit


def _encode_response_headers(status, ctype, length):
    idx = _STATUS_INDEX.get(status)
    if idx is not None:
        out = bytes([0x80 | idx])
    else:
        s = str(status).encode()
        out = _enc_int(8, 4, 0x00) + _enc_int(len(s), 7, 0) + s
    ct = ctype.encode()
    cl = str(length).encode()
    return (out + _enc_int(31, 4, 0x00) + _enc_int(len(ct), 7, 0) + ct
            + _enc_int(28, 4, 0x00) + _enc_int(len(cl), 7, 0) + cl)


# --------------------------------------------------------------------------- connection

def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


class Stream:
    __slots__ = ("sid", "block", "headers", "body", "send_window", "pending", "timer", "held", "consumed")

    def __init__(self, sid, send_window):
        self.sid = sid
        self.block = bytearray()
        self.headers = None
        self.body = bytearray()
        self.send_window = send_window
        self.pending = None       # response DATA still to send (flow control)
        self.timer = None
        self.held = False
        self.consumed = 0


class H2Connection:
    """Server side of one HTTP/2 connection.  `dispatch(method, target, headers, body, stream)`
    is called per complete request; it answers with respond() or reset() (maybe later)."""

    def __init__(self, transport, dispatch):
        self.t = transport
        self.dispatch = dispatch
        self.buf = bytearray()
        self.preface_seen = False
        self.hpack = HpackDecoder()
        self.streams = {}
        self.last_sid = 0
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.conn_send_window = 65535
        self.recv_consumed = 0
        self.cont_sid = 0          # stream whose header block awaits CONTINUATION
        self.out = []
        self.closed = False
        self.blocked = deque()
        # Our SETTINGS, then open the connection receive window wide.
        settings = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in (
            (0x3, OUR_MAX_STREAMS), (0x4, OUR_STREAM_WINDOW)))
        self.out.append(frame(SETTINGS, 0, 0, settings))
        self.out.append(frame(WINDOW_UPDATE, 0, 0, (OUR_CONN_WINDOW - 65535).to_bytes(4, "big")))

    # -- output

    def flush(self):
        if self.out and not self.closed:
            data = b"".join(self.out)
            self.out.clear()
            self.t.write(data)

    def goaway(self, code, why=""):
        if self.closed:
            return
        print("wa_mock: HTTP/2 connection error %d: %s" % (code, why), file=sys.stderr)
        self.out.append(frame(GOAWAY, 0, 0, self.last_sid.to_bytes(4, "big") + code.to_bytes(4, "big")
                              + why.encode()[:200]))
        self.flush()
        self.closed = True
        self.t.close()

    def respond(self, st, status, body, ctype):
        if self.closed or self.streams.get(st.sid) is not st:
            return
        b = body.encode() if isinstance(body, str) else body
        block = encode_response_headers(status, ctype, len(b))
        if not b:
            self.out.append(frame(HEADERS, END_HEADERS | END_STREAM, st.sid, block))
            del self.streams[st.sid]
            return
        self.out.append(frame(HEADERS, END_HEADERS, st.sid, block))
        st.pending = memoryview(b)
        self._send_data(st)

    def _send_data(self, st):
        while st.pending is not None:
            n = min(len(st.pending), self.conn_send_window, st.send_window, self.peer_max_frame)
            if n <= 0:
                if st not in self.blocked:
                    self.blocked.append(st)
                return
            chunk = st.pending[:n]
            st.pending = st.pending[n:]
            self.conn_send_window -= n
            st.send_window -= n
            last = len(st.pending) == 0
            self.out.append(frame(DATA, END_STREAM if last else 0, st.sid, bytes(chunk)))
            if last:
                st.pending = None
                self.streams.pop(st.sid, None)

    def _unblock(self):
        for _ in range(len(self.blocked)):
            st = self.blocked.popleft()
            if self.streams.get(st.sid) is st:
                self._send_data(st)

    def reset(self, st, code=INTERNAL_ERROR):
        if self.closed or self.streams.get(st.sid) is not st:
            return
        self.out.append(frame(RST_STREAM, 0, st.sid, code.to_bytes(4, "big")))
        del self.streams[st.sid]

    # -- input

    def feed(self, data):
        self.buf += data
        buf = self.buf
        if not self.preface_seen:
            if len(buf) < len(PREFACE):
                return
            if bytes(buf[:len(PREFACE)]) != PREFACE:
                self.goaway(PROTOCOL_ERROR, "bad preface")
                return
            del buf[:len(PREFACE)]
            self.preface_seen = True
        while len(buf) >= 9 and not self.closed:
            ln = int.from_bytes(buf[0:3], "big")
            if ln > MAX_FRAME:
                self.goaway(FRAME_SIZE_ERROR, "frame too large")
                return
            if len(buf) < 9 + ln:
                break
            ftype = buf[3]
            flags = buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(buf[9:9 + ln])
            del buf[:9 + ln]
            try:
                self.on_frame(ftype, flags, sid, payload)
            except HpackError as e:
                self.goaway(COMPRESSION_ERROR, str(e))
                return
            except (IndexError, ValueError) as e:
                self.goaway(PROTOCOL_ERROR, "malformed frame: %s" % e)
                return
        self.flush()

    @staticmethod
    def _unpad(flags, payload):
        if flags & PADDED:
            pad = payload[0]
            if pad >= len(payload):
                raise ValueError("padding")
            return payload[1:len(payload) - pad]
        return payload

    def on_frame(self, ftype, flags, sid, payload):
        if self.cont_sid and (ftype != CONTINUATION or sid != self.cont_sid):
            self.goaway(PROTOCOL_ERROR, "expected CONTINUATION")
            return
        if ftype == DATA:
            self.recv_consumed += len(payload)
            if self.recv_consumed > OUR_CONN_WINDOW // 2:
                self.out.append(frame(WINDOW_UPDATE, 0, 0, self.recv_consumed.to_bytes(4, "big")))
                self.recv_consumed = 0
            st = self.streams.get(sid)
            if st is None or st.headers is None or st.held:
                self.out.append(frame(RST_STREAM, 0, sid, (0x5).to_bytes(4, "big")))  # STREAM_CLOSED
                return
            data = self._unpad(flags, payload)
            st.body += data
            st.consumed += len(payload)
            if st.consumed > OUR_STREAM_WINDOW // 2 and not flags & END_STREAM:
                self.out.append(frame(WINDOW_UPDATE, 0, sid, st.consumed.to_bytes(4, "big")))
                st.consumed = 0
            if flags & END_STREAM:
                self._request(st)
        elif ftype == HEADERS:
            if sid == 0 or sid % 2 == 0 or sid <= self.last_sid:
                self.goaway(PROTOCOL_ERROR, "bad stream id")
                return
            self.last_sid = sid
            p = self._unpad(flags, payload)
            if flags & PRIORITY_FLAG:
                p = p[5:]
            if len(self.streams) >= OUR_MAX_STREAMS:
                self.out.append(frame(RST_STREAM, 0, sid, REFUSED_STREAM.to_bytes(4, "big")))
                return
            st = Stream(sid, self.peer_initial_window)
            self.streams[sid] = st
            st.block += p
            st.held = bool(flags & END_STREAM)  # reuse: "request ends with the headers"
            if flags & END_HEADERS:
                self._headers_done(st)
            else:
                self.cont_sid = sid
        elif ftype == CONTINUATION:
            st = self.streams.get(sid)
            if st is None or self.cont_sid != sid:
                self.goaway(PROTOCOL_ERROR, "unexpected CONTINUATION")
                return
            st.block += payload
            if flags & END_HEADERS:
                self.cont_sid = 0
                self._headers_done(st)
        elif ftype == SETTINGS:
            if flags & ACK:
                return
            if len(payload) % 6:
                self.goaway(FRAME_SIZE_ERROR, "settings length")
                return
            for i in range(0, len(payload), 6):
                k = int.from_bytes(payload[i:i + 2], "big")
                v = int.from_bytes(payload[i + 2:i + 6], "big")
                if k == 0x4:
                    if v > 0x7FFFFFFF:
                        self.goaway(FLOW_CONTROL_ERROR, "initial window")
                        return
                    delta = v - self.peer_initial_window
                    self.peer_initial_window = v
                    for st in self.streams.values():
                        st.send_window += delta
                elif k == 0x5:
                    self.peer_max_frame = v
            self.out.append(frame(SETTINGS, ACK, 0))
            self._unblock()
        elif ftype == PING:
            if not flags & ACK:
                self.out.append(frame(PING, ACK, 0, payload))
        elif ftype == WINDOW_UPDATE:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if sid == 0:
                self.conn_send_window += inc
            else:
                st = self.streams.get(sid)
                if st is not None:
                    st.send_window += inc
            self._unblock()
        elif ftype == RST_STREAM:
            st = self.streams.pop(sid, None)
            if st is not None and st.timer is not None:
                st.timer.cancel()
        elif ftype == GOAWAY:
            self.flush()
            self.closed = True
            self.t.close()
        elif ftype == PUSH_PROMISE:
            self.goaway(PROTOCOL_ERROR, "clients must not push")
        # PRIORITY and unknown frame types are ignored (RFC 9113 section 5.5)

    def _headers_done(self, st):
        hdrs = self.hpack.decode(bytes(st.block))
        st.block = bytearray()
        h = {}
        for n, v in hdrs:
            h[n.decode("latin-1")] = v.decode("latin-1")
        st.headers = h
        if st.held:       # END_STREAM was on HEADERS: no body
            st.held = False
            self._request(st)

    def _request(self, st):
        st.held = True     # from now on no more DATA is accepted for it
        h = st.headers
        method = h.pop(":method", "")
        target = h.pop(":path", "")
        self.dispatch(method, target, h, bytes(st.body), st)

    def connection_lost(self):
        self.closed = True
        for st in self.streams.values():
            if st.timer is not None:
                st.timer.cancel()
        self.streams.clear()
