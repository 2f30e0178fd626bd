# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Re-hashing S3 objects as they stream, to compare with what S3 has stored.

S3 keeps a checksum per object (SHA-256, SHA-1, CRC32, CRC32C or CRC64NVME),
either of the whole object or, for multipart uploads, a checksum of the parts'
checksums with a ``-<parts>`` suffix. Without one, the ETag of a single-part
upload is the MD5 of its bytes, and the ETag of a multipart upload is the MD5
of the parts' MD5s with the same suffix.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from dataclasses import dataclass
from typing import Callable

try:
    from awscrt import checksums as crt_checksums

    HAS_CRT = True
except ImportError:  # CRC32C and CRC64NVME then cannot be re-computed
    HAS_CRT = False

# Checksum fields of a HeadObject answer, strongest first.
CHECKSUM_FIELDS = (
    ("SHA256", "ChecksumSHA256"),
    ("SHA1", "ChecksumSHA1"),
    ("CRC64NVME", "ChecksumCRC64NVME"),
    ("CRC32C", "ChecksumCRC32C"),
    ("CRC32", "ChecksumCRC32"),
)
SHA_ALGORITHMS = ("SHA256", "SHA1")
PARTS_SUFFIX = re.compile(r"^(?P<value>.+)-(?P<parts>\d+)$")
MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
# Server-side encryption with KMS or customer keys makes the ETag something
# other than the MD5 of the bytes.
ETAG_IS_NOT_MD5 = ("aws:kms", "aws:kms:dsse")

MATCH, MISMATCH, UNVERIFIABLE = "match", "mismatch", "unverifiable"


class _Crc:
    """A CRC with the ``update``/``digest`` interface of hashlib."""

    def __init__(self, function: Callable, width: int) -> None:
        self._function = function
        self._width = width
        self._value = 0

    def update(self, data: bytes) -> None:
        """Add ``data`` to the CRC."""
        self._value = self._function(data, self._value)

    def digest(self) -> bytes:
        """Return the CRC big-endian, as S3 encodes it."""
        return self._value.to_bytes(self._width, "big")


def _md5():
    try:
        return hashlib.md5(usedforsecurity=False)
    except TypeError:  # Python 3.8 has no usedforsecurity
        return hashlib.md5()


def _crc_factories() -> dict:
    factories = {"CRC32": lambda: _Crc(zlib.crc32, 4)}
    if HAS_CRT:
        factories["CRC32C"] = lambda: _Crc(crt_checksums.crc32c, 4)
        factories["CRC64NVME"] = lambda: _Crc(crt_checksums.crc64nvme, 8)
    return factories


HASHES = {
    "SHA256": hashlib.sha256,
    "SHA1": hashlib.sha1,
    "MD5": _md5,
    **_crc_factories(),
}


@dataclass(frozen=True)
class Expected:
    """What an object's bytes must hash to, as S3 states it."""

    source: str
    algorithm: str
    value: str
    parts: int = 0
    part_size: int = 0

    @property
    def label(self) -> str:
        """Name the kind of value, for messages."""
        if self.source == "etag":
            return "multipart ETag" if self.parts else "ETag (MD5)"
        kind = f"composite {self.algorithm}" if self.parts else self.algorithm
        return f"stored {kind} checksum"

    @property
    def supported(self) -> bool:
        """Tell whether this Python can compute the algorithm."""
        return self.algorithm in HASHES

    def shown(self) -> str:
        """The value as S3 shows it, with its parts suffix."""
        return f"{self.value}-{self.parts}" if self.parts else self.value


def expected_from_head(head: dict) -> Expected | None:
    """Pick the value to verify from a HeadObject answer, or None if there is none."""
    etag = str(head.get("ETag") or "").strip('"')
    for algorithm, key in CHECKSUM_FIELDS:
        if head.get(key):
            value, parts = split_parts(head[key])
            return Expected(
                "checksum", algorithm, value, parts or _composite(head, algorithm, etag)
            )
    if head.get("ServerSideEncryption") in ETAG_IS_NOT_MD5 or head.get(
        "SSECustomerAlgorithm"
    ):
        return None
    value, parts = split_parts(etag)
    if MD5_HEX.match(value):
        return Expected("etag", "MD5", value, parts)
    return None


def _composite(head: dict, algorithm: str, etag: str) -> int:
    """The part count of a composite checksum shown without its suffix, else 0.

    Some S3 servers leave out the ``-<parts>`` suffix. A multipart upload (its
    ETag has the suffix) with a SHA checksum is always composite; a CRC one is
    composite only when ``ChecksumType`` says so.
    """
    parts = split_parts(etag)[1]
    kind = head.get("ChecksumType")
    if kind == "COMPOSITE" or (kind is None and algorithm in SHA_ALGORITHMS):
        return parts
    return 0


def split_parts(value: str) -> tuple:
    """Split ``value-N`` into the value and the part count (0 without a suffix)."""
    found = PARTS_SUFFIX.match(value)
    if found is None:
        return value, 0
    return found.group("value"), int(found.group("parts"))


class Digester:
    """Hashes a stream as S3 did: whole, or part by part for multipart values."""

    def __init__(self, expected: Expected) -> None:
        self.expected = expected
        self._factory = HASHES[expected.algorithm]
        self._whole = self._factory()
        self._part = self._factory()
        self._part_bytes = 0
        self._part_digests: list = []

    def update(self, data: bytes) -> None:
        """Add ``data``, splitting it at part boundaries when parts matter."""
        size = self.expected.part_size
        if not self.expected.parts or size <= 0:
            self._whole.update(data)
            return
        view = memoryview(data)
        while view:
            room = size - self._part_bytes
            piece, view = view[:room], view[room:]
            self._part.update(piece)
            self._part_bytes += len(piece)
            if self._part_bytes == size:
                self._close_part()

    def _close_part(self) -> None:
        self._part_digests.append(self._part.digest())
        self._part = self._factory()
        self._part_bytes = 0

    def computed(self) -> str:
        """The value of the bytes seen, encoded and suffixed as S3 does."""
        if not self.expected.parts:
            return self._encode(self._whole.digest())
        if self._part_bytes or not self._part_digests:
            self._close_part()
        combined = self._factory()
        for digest in self._part_digests:
            combined.update(digest)
        return f"{self._encode(combined.digest())}-{len(self._part_digests)}"

    def _encode(self, digest: bytes) -> str:
        if self.expected.source == "etag":
            return digest.hex()
        return base64.b64encode(digest).decode("ascii")

    def matches(self) -> bool:
        """Tell whether the bytes seen hash to the expected value."""
        return self.computed() == self.expected.shown()
