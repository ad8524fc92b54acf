"""Reads a burnpack (.bpk) weights file, burn 0.22's format, into numpy arrays.

Layout: "NRUB" magic, u16 version, u32 metadata length (little endian), CBOR metadata
{"tensors": {name: {"dtype", "shape", "data_offsets": [start, end], ...}}, ...}, then the data
section, which starts at the next multiple of 256 bytes; offsets are relative to it.
"""

import struct

import numpy as np


def _cbor(buf, i):
    """Decodes one CBOR item at buf[i:]; returns (value, next index). Enough of RFC 8949 for
    burnpack metadata: integers, byte and text strings, arrays, maps, floats, simple values."""
    b = buf[i]
    major, info = b >> 5, b & 31
    i += 1
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        n = 1 << (info - 24)
        if major == 7:
            raw = buf[i:i + n]
            i += n
            if n == 2:
                return float(np.frombuffer(raw, ">f2")[0]), i
            return struct.unpack(">f" if n == 4 else ">d", raw)[0], i
        arg = int.from_bytes(buf[i:i + n], "big")
        i += n
    else:
        raise ValueError(f"unsupported CBOR item {b:#x} at {i - 1}")
    if major == 0:
        return arg, i
    if major == 1:
        return -1 - arg, i
    if major in (2, 3):
        raw = bytes(buf[i:i + arg])
        return (raw if major == 2 else raw.decode()), i + arg
    if major == 4:
        out = []
        for _ in range(arg):
            v, i = _cbor(buf, i)
            out.append(v)
        return out, i
    if major == 5:
        out = {}
        for _ in range(arg):
            k, i = _cbor(buf, i)
            v, i = _cbor(buf, i)
            out[k] = v
        return out, i
    if major == 6:
        return _cbor(buf, i)
    if major == 7:
        return {20: False, 21: True, 22: None}.get(arg), i
    raise ValueError(f"unsupported CBOR major type {major}")


def read(path):
    """{name: float32 array} of every tensor in the file."""
    buf = open(path, "rb").read()
    if buf[:4] != b"NRUB":
        raise ValueError(f"{path}: not a burnpack file")
    (meta_len,) = struct.unpack("<I", buf[6:10])
    meta, _ = _cbor(buf, 10)
    start = -(-(10 + meta_len) // 256) * 256
    out = {}
    for name, t in meta["tensors"].items():
        if t["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {t['dtype']} (only F32 is read)")
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(buf[start + a:start + b], "<f4").reshape(t["shape"]).copy()
    return out
