"""Re-hashing objects as S3 did: whole, per part, checksums and MD5 ETags."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.backup_digest import (
    Digester,
    Expected,
    expected_from_head,
    split_parts,
)

DATA = os.urandom(10_000)
PART = 4096
PARTS = [DATA[start : start + PART] for start in range(0, len(DATA), PART)]


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def feed(digester: Digester, size: int) -> Digester:
    for start in range(0, len(DATA), size):
        digester.update(DATA[start : start + size])
    return digester


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            {"ChecksumSHA256": "abc=", "ETag": '"0123"'},
            Expected("checksum", "SHA256", "abc="),
        ),
        (
            {"ChecksumSHA256": "abc=-3", "ChecksumCRC32": "zz=="},
            Expected("checksum", "SHA256", "abc=", 3),
        ),
        ({"ChecksumCRC32": "AAAAAA=="}, Expected("checksum", "CRC32", "AAAAAA==")),
        (
            {"ChecksumSHA256": "abc=", "ETag": '"' + "c" * 32 + '-4"'},
            Expected("checksum", "SHA256", "abc=", 4),
        ),
        (
            {"ChecksumCRC32": "AAAAAA==", "ETag": '"' + "c" * 32 + '-4"'},
            Expected("checksum", "CRC32", "AAAAAA=="),
        ),
        (
            {
                "ChecksumCRC32": "AAAAAA==",
                "ChecksumType": "COMPOSITE",
                "ETag": '"' + "c" * 32 + '-4"',
            },
            Expected("checksum", "CRC32", "AAAAAA==", 4),
        ),
        ({"ETag": '"' + "a" * 32 + '"'}, Expected("etag", "MD5", "a" * 32)),
        ({"ETag": '"' + "b" * 32 + '-12"'}, Expected("etag", "MD5", "b" * 32, 12)),
        ({"ETag": '"' + "a" * 32 + '"', "ServerSideEncryption": "aws:kms"}, None),
        ({"ETag": '"' + "a" * 32 + '"', "SSECustomerAlgorithm": "AES256"}, None),
        ({"ETag": '"not-an-md5"'}, None),
        ({}, None),
    ],
)
def test_the_value_to_verify_is_the_strongest_s3_gives(head, expected):
    assert expected_from_head(head) == expected


@pytest.mark.parametrize(
    ("value", "parts"),
    [("abc=", ("abc=", 0)), ("abc=-2", ("abc=", 2)), ("ab-c", ("ab-c", 0))],
)
def test_split_parts(value, parts):
    assert split_parts(value) == parts


@pytest.mark.parametrize("chunk", [1000, PART, 7777, len(DATA)])
def test_whole_sha256_matches_whatever_the_chunks(chunk):
    expected = Expected("checksum", "SHA256", b64(hashlib.sha256(DATA).digest()))

    assert feed(Digester(expected), chunk).matches()


@pytest.mark.parametrize("chunk", [1000, PART, 9999])
def test_composite_sha256_hashes_the_part_hashes(chunk):
    combined = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in PARTS))
    expected = Expected("checksum", "SHA256", b64(combined.digest()), 3, PART)

    digester = feed(Digester(expected), chunk)

    assert digester.computed() == f"{b64(combined.digest())}-3"
    assert digester.matches()


def test_multipart_etag_is_the_md5_of_the_part_md5s():
    combined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in PARTS))
    expected = Expected("etag", "MD5", combined.hexdigest(), 3, PART)

    assert feed(Digester(expected), 3000).matches()


def test_single_part_etag_is_the_md5_in_hex():
    expected = Expected("etag", "MD5", hashlib.md5(DATA).hexdigest())

    assert feed(Digester(expected), 333).computed() == hashlib.md5(DATA).hexdigest()


def test_crc32_is_encoded_big_endian_in_base64():
    crc = zlib.crc32(DATA).to_bytes(4, "big")

    assert feed(Digester(Expected("checksum", "CRC32", b64(crc))), 100).matches()


def test_changed_bytes_do_not_match_and_show_both_values():
    stored = b64(hashlib.sha256(b"original").digest())
    digester = Digester(Expected("checksum", "SHA256", stored))
    digester.update(b"0riginal")

    assert not digester.matches()
    assert digester.computed() == b64(hashlib.sha256(b"0riginal").digest())


def test_a_wrong_part_size_does_not_match():
    combined = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in PARTS))
    expected = Expected("checksum", "SHA256", b64(combined.digest()), 3, PART + 1)

    assert not feed(Digester(expected), PART).matches()


@pytest.mark.parametrize(
    ("expected", "label"),
    [
        (Expected("checksum", "SHA256", "x"), "stored SHA256 checksum"),
        (Expected("checksum", "SHA256", "x", 2), "stored composite SHA256 checksum"),
        (Expected("etag", "MD5", "x"), "ETag (MD5)"),
        (Expected("etag", "MD5", "x", 4), "multipart ETag"),
    ],
)
def test_labels_name_the_kind_of_value(expected, label):
    assert expected.label == label


def test_crc32c_is_supported_only_with_awscrt():
    from ansible_collections.trm.maintenance.plugins.module_utils import (
        backup_digest,
    )

    assert Expected("checksum", "CRC32C", "x").supported is backup_digest.HAS_CRT
    assert Expected("checksum", "SHA256", "x").supported is True
