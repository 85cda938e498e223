#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (deterministic: run it
again after editing and commit the result).

    /usr/bin/python3 tests/fuzz/make_corpus.py

Each file starts with the target's configuration bytes (see the target's
header comment), then the stream. WebSocket frames use the all-zero masking
key so the fuzzer sees (and mutates) plain payload bytes; a few use a real key.
"""

import hashlib
import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
sys.path.insert(0, str(HERE.parent / "integration"))
import wsframe  # noqa: E402  (the one client-frame builder of the test suites)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's example key


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# ---- HTTP (fuzz_http: limits byte, split seed byte, stream) -------------------
BIG_LIMITS = 0x3F    # 64 KiB head, 16 KiB URL, 128 headers
SMALL_LIMITS = 0x00  # 64-byte head, 8-byte URL, 1 header


def req(method="GET", target="/", headers=(("Host", "x"),), body=b"", version="HTTP/1.1", eol=b"\r\n"):
    out = f"{method} {target} {version}".encode() + eol
    for name, value in headers:
        out += f"{name}: {value}".encode("latin-1") + eol
    return out + eol + body


HTTP = {
    "get": req(),
    "get_query": req(target="/a/b?x=1&y=%20#frag"),
    "absolute_form": req(target="http://example.com:8080/p?q"),
    "absolute_no_path": req(target="http://example.com"),
    "options_star": req("OPTIONS", "*"),
    "head": req("HEAD", "/h"),
    "post_length": req("POST", "/p", (("Host", "x"), ("Content-Length", "5")), b"hello"),
    "post_chunked": req("POST", "/c", (("Host", "x"), ("Transfer-Encoding", "chunked")),
                        b"5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n"),
    "pipelined": req(target="/1") + req("POST", "/2", (("Host", "x"), ("Content-Length", "2")), b"ab")
    + req(target="/3", headers=(("Host", "x"), ("Connection", "close"))),
    "http10_keepalive": req(version="HTTP/1.0", headers=(("Connection", "keep-alive"),)),
    "expect_continue": req("PUT", "/u", (("Host", "x"), ("Expect", "100-continue"), ("Content-Length", "1")), b"z"),
    "upgrade_ws": req(headers=(("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                               ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")))
    + b"\x81\x85\x00\x00\x00\x00hello",
    "upgrade_other": req(headers=(("Host", "x"), ("Upgrade", "h2c"), ("Connection", "Upgrade"))),
    "many_headers": req(headers=(("Host", "x"),) + tuple((f"X-H{i}", "v" * i) for i in range(40))),
    "empty_host": req(headers=(("Host", ""),)),  # allowed: the target has no authority
    "ows_values": req(headers=(("Host", " x \t"), ("X-A", "\t a b \t"), ("X-Empty", ""))),
    "obs_text": req(headers=(("Host", "x"), ("X-Latin", "caf\xe9"))),
    # hostile shapes: all must fail cleanly (or parse the same when split)
    "cl_te": req("POST", "/", (("Host", "x"), ("Content-Length", "3"), ("Transfer-Encoding", "chunked")),
                 b"0\r\n\r\n"),
    "two_cl": req("POST", "/", (("Host", "x"), ("Content-Length", "3"), ("Content-Length", "4")), b"abcd"),
    "bad_chunk_size": req("POST", "/", (("Host", "x"), ("Transfer-Encoding", "chunked")), b"zz\r\nab\r\n0\r\n\r\n"),
    "chunk_size_overflow": req("POST", "/", (("Host", "x"), ("Transfer-Encoding", "chunked")),
                               b"ffffffffffffffffff\r\nab\r\n"),
    "te_gzip_chunked": req("POST", "/", (("Host", "x"), ("Transfer-Encoding", "gzip, chunked")), b"0\r\n\r\n"),
    "obs_fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "bare_lf": req(eol=b"\n"),
    "bare_lf_end": b"GET / HTTP/1.1\r\nHost: x\r\n\n",
    "bare_cr": b"GET / HTTP/1.1\rHost: x\r\n\r\n",
    "nul_header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "ctl_header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "no_host": b"GET / HTTP/1.1\r\nX-A: a\r\n\r\n",  # RFC 9112 3.2: 400 in HTTP/1.1
    "http09": b"GET /\r\n",
    "http2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "http11_bad_version": b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    "connect": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "expect_other": req(headers=(("Host", "x"), ("Expect", "something"))),
    "cut_mid_head": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: abc",
    "cut_mid_body": req("POST", "/", (("Host", "x"), ("Content-Length", "100")), b"short"),
}


def write_http():
    for name, data in HTTP.items():
        write("http", name, bytes([BIG_LIMITS, len(name)]) + data)
    write("http", "small_limits_url", bytes([SMALL_LIMITS, 7]) + req(target="/" + "u" * 40))
    write("http", "small_limits_headers", bytes([SMALL_LIMITS | 0x0C, 9]) + req(headers=(("A", "1"), ("B", "2"))))
    write("http", "small_limits_head", bytes([0x3C, 3]) + req(headers=(("Host", "x" * 100),)))


# ---- WebSocket (fuzz_ws: config byte, split seed byte, stream) ----------------
# config: bits 0-2 size limit {0, 1, 125, 126, 65535, 65536, 1 MiB, 16}, 0x08 RSV1
# allowed, 0x10 echo, 0x20 close after the second message, 0x40 send after feeds
LIMIT_NONE, LIMIT_125, LIMIT_1M, LIMIT_16 = 0, 2, 6, 7
ZERO = wsframe.ZERO_KEY


def frame(op, payload=b"", key=ZERO, **kw):
    """wsframe.frame with the all-zero key unless told: the corpus stays the same run to run."""
    return wsframe.frame(op, payload, key=key, **kw)


def close(code=None, reason=b""):
    return frame(8, wsframe.close_payload(code, reason))


WS = {
    "text": frame(1, "hello"),
    "binary": frame(2, bytes(range(256))),
    "empty_text": frame(1, ""),
    "len_125": frame(2, b"a" * 125),
    "len_126": frame(2, b"b" * 126),
    "cut_header": frame(2, b"c" * 300)[:3],
    "fragmented": frame(1, "hel", fin=False) + frame(0, "lo"),
    "fragmented_ping": frame(1, "a", fin=False) + frame(9, "p") + frame(0, "b", fin=False) + frame(0, "c"),
    "ping": frame(9, b"ping data"),
    "ping_125": frame(9, b"p" * 125),
    "unsolicited_pong": frame(10, b"pong"),
    "close_normal": close(1000, b"bye"),
    "close_empty": close(),
    "close_one_byte": frame(8, b"\x03"),
    "close_bad_code": close(999),
    "close_1005": close(1005),
    "close_4000_reason": close(4000, "fin \u00e9".encode()),
    "close_bad_reason": close(1000, b"\xff\xfe"),
    "close_then_text": close(1000) + frame(1, "late"),
    "utf8_multi": frame(1, "\u00e9\u20ac\U0001f600"),
    "utf8_split_fragments": frame(1, "\u20ac".encode()[:1], fin=False) + frame(0, "\u20ac".encode()[1:]),
    "utf8_invalid": frame(1, b"ok\xc0\xafno"),
    "utf8_surrogate": frame(1, b"\xed\xa0\x80"),
    "utf8_overlong": frame(1, b"\xe0\x80\xaf"),
    "utf8_too_big": frame(1, b"\xf4\x90\x80\x80"),
    "reserved_opcode": frame(3, "x"),
    "reserved_control": frame(11, "x"),
    "rsv1": frame(1, "x", rsv=4),
    "rsv2": frame(1, "x", rsv=2),
    "unmasked": frame(1, "x", masked=False),
    "cont_without_start": frame(0, "x"),
    "new_msg_in_fragmented": frame(1, "a", fin=False) + frame(1, "b"),
    "non_minimal_16": frame(1, "short", length_form=16),
    "non_minimal_64": frame(1, "short", length_form=64),
    "ping_126": frame(9, b"p" * 126, length_form=16),
    "ping_not_fin": frame(9, "p", fin=False),
    "many_small": b"".join(frame(1, str(i)) for i in range(30)),
    "real_key": frame(1, "masked for real", key=b"\x37\xfa\x21\x3d"),
    "huge_declared": b"\x82\xff" + struct.pack("!Q", 1 << 40) + ZERO + b"abc",
    "bad_64bit_len": b"\x82\xff" + struct.pack("!Q", 1 << 63) + ZERO,
}


def write_ws():
    for name, data in WS.items():
        write("ws", name, bytes([LIMIT_1M, len(name)]) + data)
    write("ws", "limit_16_over", bytes([LIMIT_16, 1]) + frame(2, b"x" * 17))
    write("ws", "limit_16_fragments", bytes([LIMIT_16, 2]) + frame(2, b"x" * 10, fin=False) + frame(0, b"y" * 10))
    write("ws", "echo_and_close", bytes([LIMIT_1M | 0x10 | 0x20, 3]) + b"".join(frame(1, f"m{i}") for i in range(4)))
    write("ws", "send_after", bytes([LIMIT_NONE | 0x40, 4]) + frame(1, "a") + frame(9) + close(1001))
    write("ws", "rsv1_bad_deflate", bytes([LIMIT_1M | 0x08, 5]) + frame(1, "\xff", rsv=4) + frame(0, "x", rsv=4))
    write("ws", "deflate_text", bytes([LIMIT_1M | 0x08 | 0x10, 6]) + frame(1, deflate("hello hello hello hello"), rsv=4)
          + frame(2, deflate(bytes(200)), rsv=4) + frame(1, "plain"))
    write("ws", "deflate_bad_utf8", bytes([LIMIT_1M | 0x08, 7]) + frame(1, deflate(b"ok\xc0\xaf"), rsv=4))
    write("ws", "deflate_bomb", bytes([LIMIT_125 | 0x08, 8]) + frame(2, deflate(bytes(100000)), rsv=4))
    write("ws", "deflate_fragmented", bytes([LIMIT_1M | 0x08, 9])
          + frame(1, deflate("fragmented")[:3], rsv=4, fin=False) + frame(0, deflate("fragmented")[3:]))
    write("ws", "big_64bit", bytes([LIMIT_NONE, 6]) + frame(2, b"z" * 65536))


def deflate(data):
    """One permessage-deflate message: raw DEFLATE, sync flush, tail removed."""
    if isinstance(data, str):
        data = data.encode()
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\0\0\xff\xff")
    return out[:-4]


# ---- permessage-deflate (fuzz_ws_deflate: config byte, offers line, messages) ----
def messages(*parts):
    return b"".join(bytes([len(p)]) + p for p in parts)


DEFLATE = {
    "plain_offer": (0x3F, b"permessage-deflate", messages(deflate("hello"), b"round trip")),
    "offer_params": (0x3E, b"permessage-deflate; client_max_window_bits; server_max_window_bits=10",
                     messages(deflate("abc" * 20))),
    "offer_takeover": (0x3F, b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                       messages(deflate("x"), deflate("y"))),
    "offer_quoted": (0x1F, b'permessage-deflate; client_max_window_bits="12", x-other',
                     messages(b"\x00\x01\x02")),
    "offer_bad_then_good": (0x3F, b"permessage-deflate; server_max_window_bits=99, permessage-deflate",
                            messages(deflate(bytes(64)))),
    "offer_repeat": (0x3F, b"permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                     b""),
    "bomb": (0x1F, b"permessage-deflate", messages(deflate(bytes(200000))[:255])),
    "garbage": (0x3F, b"x, y;z=1", messages(b"\xff\xff\xff", b"not deflate")),
    "takeover_many": (0x01, b"permessage-deflate", messages(*(b"same words again " * 3 for _ in range(5)))),
}


def write_deflate():
    for name, (cfg, offers, msgs) in DEFLATE.items():
        write("ws_deflate", name, bytes([cfg]) + offers + b"\n" + msgs)


# ---- handshake (fuzz_ws_handshake: app byte, stream) ---------------------------
def upgrade(*, method="GET", version="HTTP/1.1", drop=(), extra=(), key=KEY, ws_version="13"):
    base = [("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", ws_version)]
    headers = [(n, v) for n, v in base if n not in drop] + list(extra)
    return req(method, "/ws", headers, version=version)


HANDSHAKE = {
    "valid": upgrade(),
    "protocols": upgrade(extra=[("Sec-WebSocket-Protocol", "chat, , superchat ,v1.json"),
                                ("Sec-WebSocket-Protocol", "x")]),
    "extensions": upgrade(extra=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                                 ("Sec-WebSocket-Extensions", "  x-ext  ")]),
    "key_ows": upgrade(key=" \t" + KEY + " "),
    "no_key": upgrade(drop=("Sec-WebSocket-Key",)),
    "short_key": upgrade(key="c2hvcnQ="),
    "bad_key": upgrade(key="!" * 22 + "=="),
    "two_keys": upgrade(extra=[("Sec-WebSocket-Key", KEY)]),
    "version_8": upgrade(ws_version="8"),
    "no_version": upgrade(drop=("Sec-WebSocket-Version",)),
    "two_versions": upgrade(extra=[("Sec-WebSocket-Version", "13")]),
    "http10": upgrade(version="HTTP/1.0"),
    "post": upgrade(method="POST"),
    "no_host": upgrade(drop=("Host",)),
    "connection_list": upgrade(drop=("Connection",), extra=[("Connection", "keep-alive, Upgrade")]),
    "upgrade_list": upgrade(drop=("Upgrade",), extra=[("Upgrade", "h2c, WebSocket")]),
    "no_connection": upgrade(drop=("Connection",)),
    "pipelined": upgrade() + upgrade(key="AAAAAAAAAAAAAAAAAAAAAA=="),
}


def write_handshake():
    for i, (name, data) in enumerate(HANDSHAKE.items()):
        write("ws_handshake", name, bytes([i * 0x0B & 0xFF]) + data)


# ---- UTF-8 (fuzz_utf8: split seed byte, bytes) ---------------------------------
UTF8 = {
    "ascii": b"hello, world",
    "two": "\u00e9\u00ff".encode(),
    "three": "\u20ac\uffff\ud7ff".encode("utf-8", "surrogatepass"),
    "four": "\U0001f600\U0010ffff".encode(),
    "overlong_2": b"\xc0\x80",
    "overlong_3": b"\xe0\x80\xaf",
    "overlong_4": b"\xf0\x80\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "surrogate_low": b"\xed\xbf\xbf",
    "above_max": b"\xf4\x90\x80\x80",
    "f5": b"\xf5\x80\x80\x80",
    "lone_continuation": b"a\x80b",
    "truncated": "\U0001f600".encode()[:3],
    "five_byte": b"\xf8\x88\x80\x80\x80",
    "fe_ff": b"\xfe\xff",
    "mixed": "ok \u03ba\u1f79\u03c3\u03bc\u03b5 \U0001f600 ".encode() * 3 + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
}


def write_utf8():
    for name, data in UTF8.items():
        write("utf8", name, bytes([len(name)]) + data)


def main():
    write_http()
    write_ws()
    write_handshake()
    write_utf8()
    write_deflate()
    n = sum(1 for _ in CORPUS.rglob("*") if _.is_file())
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(CORPUS.rglob("*")) if p.is_file()))
    print(f"{n} corpus files in {CORPUS} (sha256 {digest.hexdigest()[:12]})")


if __name__ == "__main__":
    main()
