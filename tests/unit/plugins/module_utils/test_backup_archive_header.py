"""The databases an archive names in its header, read before a restore."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import bson
import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.backup_s3 import (
    S3Object,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_scan import (
    archive_databases,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_streams import (
    ContentError,
)
from tests.unit.plugins.module_utils.backup_builders import Collection, write_archive

WHEN = datetime(2025, 3, 9, 2, 0, tzinfo=timezone.utc)


class Store:
    """Serves objects in small chunks and records how far each was read."""

    def __init__(self, files: dict) -> None:
        self.files = files
        self.read: dict = {}
        self.closed: list = []

    def chunks(self, obj: S3Object, *, etag: str | None = None):
        body = self.files[obj.relative]
        try:
            for start in range(0, len(body), 64):
                self.read[obj.relative] = start + 64
                yield body[start : start + 64]
        finally:
            self.closed.append(obj.relative)


def objects(files: dict) -> list:
    return [
        S3Object(f"b/{name}", name, len(body), WHEN, "e" * 32)
        for name, body in files.items()
    ]


def archive(*databases: str) -> bytes:
    docs = [bson.encode({"_id": n, "pad": "x" * 200}) for n in range(50)]
    return write_archive(
        [Collection(database, "users", docs) for database in databases]
    )


def test_the_header_names_the_databases_and_the_rest_is_not_downloaded():
    files = {
        "trm.archive.gz": gzip.compress(archive("trm", "billing")),
        "plain.dump": archive("reports"),
        "trm/users.bson.gz": b"not read",
        "README.txt": b"mongodump of trm",
    }
    store = Store(files)

    found = archive_databases(store, objects(files))

    assert found == {"trm.archive.gz": {"trm", "billing"}, "plain.dump": {"reports"}}
    assert "trm/users.bson.gz" not in store.read
    # Only the header of the plain archive was fetched: its blocks were not.
    assert store.read["plain.dump"] < len(files["plain.dump"]) // 4
    assert sorted(store.closed) == ["README.txt", "plain.dump", "trm.archive.gz"]


def test_a_damaged_header_is_a_content_error_naming_the_object():
    files = {"trm.archive": archive("trm")[:30]}

    with pytest.raises(ContentError, match=r"^trm\.archive: "):
        archive_databases(Store(files), objects(files))


class Bucket(Store):
    """Enough of S3Store for a verification of one prefix."""

    bucket = "trm-backups"

    def list(self, prefix: str):
        return iter(objects(self.files))

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"


def verification(files: dict, database: str, *, check_mode: bool):
    from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
        Options,
        Verification,
    )

    options = Options.from_params(
        {
            "bucket": "trm-backups",
            "prefix": "b/",
            "date": "2025-03-09",
            "levels": [5],
            "restore_uri": "mongodb://127.0.0.1:1/",
            "restore_database": database,
            "restore_allowed_databases": ["trm*"],
        }
    )
    return Verification(options, Bucket(files), WHEN, check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_restore_into_a_database_of_the_archive_is_refused(check_mode):
    from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
        OptionError,
    )

    files = {"trm.archive.gz": gzip.compress(archive("trm"))}

    with pytest.raises(OptionError) as raised:
        verification(files, "trm", check_mode=check_mode).run()

    assert str(raised.value) == (
        "Option 'restore_database' is a database of the backup itself (the archive "
        "trm.archive.gz holds trm); restoring would drop it; got 'trm'"
    )


def test_an_unreadable_archive_header_refuses_the_restore():
    files = {"trm.archive": archive("trm")[:30]}

    result = verification(files, "trm_restore_test", check_mode=True).run()

    restore = {c["name"]: c for c in result["checks"]}["restore"]
    assert restore["status"] == "unknown"
    assert restore["message"].startswith(
        "The restore test did not run: an archive's header cannot be read "
        "(trm.archive: "
    )
    assert restore["message"].endswith(
        "so the databases it holds, which trm_restore_test must not be one of, "
        "are unknown"
    )
    assert result["restore"] == {"status": "refused"}
    assert result["changed"] is False
