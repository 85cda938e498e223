"""RFC 6455 client frames, built byte by byte (any length encoding, RSV bits,
opcode, mask): shared by the integration, conformance and fault suites."""

import os
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
ZERO_KEY = b"\0\0\0\0"  # a masking key that leaves bulk payloads as they are


def mask(payload, key):
    if key == ZERO_KEY or not payload:
        return bytes(payload)
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, key=None, length_form=None,
          declared=None):
    """One client frame (RFC 6455 5.2).

    rsv: the RSV bits as 0..7 (4 = RSV1). length_form: 7, 16 or 64 forces an
    encoding (the minimal one by default). key: the masking key (random by
    default). declared: a payload length to put in the header instead of
    len(payload) (to announce more than is sent)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if declared is None else declared
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    m = 0x80 if masked else 0
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    if form == 7:
        head = struct.pack("!BB", b0, m | n)
    elif form == 16:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4) if key is None else key
    return head + key + mask(payload, key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason
