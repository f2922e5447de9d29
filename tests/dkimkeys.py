"""DKIM key records for tests: an RSA public key of any size, DER-encoded by hand.

The checks read a key's type and size, never sign or verify with it, so the modulus is a
random odd number of exactly `bits` bits rather than a product of primes (no crypto library
needed, and a 512-bit "key" costs nothing).
"""

from __future__ import annotations

import base64
import random

_RSA_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _integer(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")  # a leading 0 keeps it positive
    return _der(0x02, raw)


def rsa_public_key(bits: int, seed: int = 1) -> bytes:
    """SubjectPublicKeyInfo DER of an RSA key whose modulus has exactly `bits` bits."""
    rng = random.Random(seed)
    modulus = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
    rsa = _der(0x30, _integer(modulus) + _integer(65537))
    algorithm = _der(0x30, _RSA_OID + b"\x05\x00")
    return _der(0x30, algorithm + _der(0x03, b"\x00" + rsa))


def rsa_key_record(bits: int, seed: int = 1) -> str:
    """`v=DKIM1; k=rsa; p=…` with such a key."""
    p = base64.b64encode(rsa_public_key(bits, seed)).decode()
    return f"v=DKIM1; k=rsa; p={p}"
