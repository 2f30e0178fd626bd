# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 side of backup verification: one boto3 client, listings and streams.

boto3's errors are turned into our own exceptions here, so the layers above
never see botocore and each problem gets a sentence an operator can act on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
        SSLError,
    )

    HAS_BOTO3 = True
except ImportError:  # reported by the caller, which names the package to install
    HAS_BOTO3 = False

PAGE_SIZE = 1000
CHUNK_BYTES = 1024 * 1024
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
}
DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "AccountProblem"}
MISSING_BUCKET_CODES = {"NoSuchBucket"}
MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
CHANGED_CODES = {"PreconditionFailed", "412"}


class S3Problem(MaintenanceError):
    """S3 could not answer; ``kind`` says why, the message says what to do."""

    def __init__(self, kind: str, message: str, *, action: str | None = None) -> None:
        self.kind = kind
        self.action = action
        super().__init__(message)


@dataclass(frozen=True)
class S3Object:
    """One object of a listing: where it is, how big, how old, and its ETag."""

    key: str
    relative: str
    size: int
    last_modified: datetime
    etag: str
    checksum_algorithms: tuple = ()


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3: the module options that boto3 needs."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    profile: str | None = None
    validate_certs: bool = True
    ca_bundle: str | None = None
    timeout: float = 30.0
    retries: int = 2
    pool_size: int = 10

    @classmethod
    def from_params(cls, params: dict) -> S3Settings:
        """Read the connection options of the module."""
        return cls(
            bucket=params["bucket"],
            endpoint_url=params.get("endpoint_url") or None,
            region=params.get("region") or None,
            access_key=params.get("access_key") or None,
            secret_key=params.get("secret_key") or None,
            session_token=params.get("session_token") or None,
            profile=params.get("profile") or None,
            validate_certs=params.get("validate_certs", True),
            ca_bundle=params.get("ca_bundle") or None,
            timeout=_timeout(params.get("timeout")),
            retries=_retries(params.get("retries")),
            pool_size=max(10, int(params.get("max_workers") or 1) * 2),
        )

    def where(self) -> str:
        """Name the endpoint for messages: the URL, or AWS and the region."""
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"


def _timeout(value: Any) -> float:
    """Seconds to wait; botocore takes no negative or zero timeout."""
    seconds = 30.0 if value is None else float(value)
    if not seconds > 0:
        raise OptionError("timeout", value, "must be a number of seconds above 0")
    return seconds


def _retries(value: Any) -> int:
    """How often a request is retried; botocore needs at least one attempt."""
    count = 2 if value is None else int(value)
    if count < 0:
        raise OptionError("retries", value, "must be 0 or more")
    return count


def make_client(settings: S3Settings) -> Any:
    """Build a boto3 S3 client with timeouts, few retries and no auto-validation."""
    try:
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            aws_session_token=settings.session_token,
            profile_name=settings.profile,
            region_name=settings.region,
        )
    except ProfileNotFound:
        raise OptionError(
            "profile", settings.profile, "names no profile in the AWS config files"
        ) from None
    region = settings.region or session.region_name
    if region is None and settings.endpoint_url:
        region = "us-east-1"
    try:
        return session.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=region,
            verify=settings.ca_bundle or settings.validate_certs,
            config=Config(**_config_options(settings)),
        )
    except ValueError as error:
        raise OptionError(
            "endpoint_url", settings.endpoint_url, f"is not usable: {error}"
        ) from None


def _config_options(settings: S3Settings) -> dict:
    options = {
        "connect_timeout": settings.timeout,
        "read_timeout": settings.timeout,
        "retries": {"total_max_attempts": 1 + settings.retries, "mode": "standard"},
        "max_pool_connections": settings.pool_size,
    }
    if settings.endpoint_url:
        # S3-compatible servers and loopback endpoints have no bucket host names.
        options["s3"] = {"addressing_style": "path"}
    # botocore 1.36 and later validate response checksums on their own; we
    # re-hash ourselves to say which object differs and by how much.
    if "response_checksum_validation" in Config.OPTION_DEFAULTS:
        options["response_checksum_validation"] = "when_required"
        options["request_checksum_calculation"] = "when_required"
    return options


class S3Store:
    """Lists prefixes and streams objects of one bucket."""

    def __init__(self, client: Any, settings: S3Settings) -> None:
        self.client = client
        self.settings = settings
        self.bucket = settings.bucket

    def url(self, key: str = "") -> str:
        """The ``s3://`` URL of ``key``, for messages."""
        return f"s3://{self.bucket}/{key}"

    def list(self, prefix: str) -> Iterator[S3Object]:
        """Yield every object under ``prefix``, one page of keys at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=prefix,
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        with self.translate(prefix):
            for page in pages:
                for entry in page.get("Contents", ()):
                    yield _object(entry, prefix)

    def any_under(self, prefix: str) -> bool:
        """Tell whether at least one object exists under ``prefix``."""
        with self.translate(prefix):
            page = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=prefix, MaxKeys=1
            )
        return bool(page.get("KeyCount") or page.get("Contents"))

    def head(self, obj: S3Object, *, part_number: int | None = None) -> dict:
        """Return HeadObject's answer with the stored checksum asked for."""
        extra = {"PartNumber": part_number} if part_number else {}
        with self.translate(obj.key):
            return self.client.head_object(
                Bucket=self.bucket, Key=obj.key, ChecksumMode="ENABLED", **extra
            )

    def chunks(self, obj: S3Object, *, etag: str | None = None) -> Iterator[bytes]:
        """Stream the object's bytes; ``etag`` makes S3 refuse a changed object."""
        extra = {"IfMatch": f'"{etag}"'} if etag else {}
        with self.translate(obj.key):
            answer = self.client.get_object(Bucket=self.bucket, Key=obj.key, **extra)
        body = answer["Body"]
        try:
            with self.translate(obj.key):
                yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()

    @contextlib.contextmanager
    def translate(self, where: str) -> Iterator[None]:
        """Turn botocore's exceptions into S3Problem with a message for people."""
        try:
            yield
        except ClientError as error:
            raise self._client_problem(error, where) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise S3Problem(
                "credentials",
                "No usable AWS credentials were found",
                action="Set access_key and secret_key, a profile, or the "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables",
            ) from None
        except SSLError as error:
            raise S3Problem(
                "tls",
                f"The TLS certificate of {self.settings.where()} failed "
                f"verification: {error}",
                action="Trust its CA with ca_bundle, or fix the endpoint's certificate",
            ) from None
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            raise S3Problem(
                "unreachable",
                f"S3 at {self.settings.where()} cannot be reached: {error}",
                action="Check endpoint_url, the network path and that S3 is up",
            ) from None
        except ReadTimeoutError:
            raise S3Problem(
                "timeout",
                f"S3 at {self.settings.where()} did not answer within "
                f"{self.settings.timeout:g} seconds while reading {self.url(where)}",
                action="Raise timeout, or check the endpoint's health",
            ) from None
        except BotoCoreError as error:
            raise S3Problem(
                "error", f"Reading {self.url(where)} failed: {error}"
            ) from None

    def _client_problem(self, error: Any, where: str) -> S3Problem:
        answer = error.response.get("Error", {})
        code = str(answer.get("Code") or "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = answer.get("Message") or code or f"HTTP {status}"
        if code in MISSING_BUCKET_CODES:
            return S3Problem(
                "missing_bucket",
                f"Bucket {self.bucket} does not exist at {self.settings.where()}",
                action="Check the bucket name and region, and that the backup job "
                "still writes there",
            )
        if code in CREDENTIAL_CODES:
            return S3Problem(
                "credentials",
                f"S3 rejected the credentials ({code}: {detail})",
                action="Check access_key, secret_key and session_token, or the "
                "profile; rotate them if they expired",
            )
        if code in DENIED_CODES or status == 403:
            return S3Problem(
                "denied",
                f"S3 denied access to {self.url(where)} ({code or 'HTTP 403'})",
                action="Grant s3:ListBucket and s3:GetObject on the backup bucket",
            )
        if code in CHANGED_CODES:
            return S3Problem(
                "changed", f"{self.url(where)} changed while it was being verified"
            )
        if code in MISSING_KEY_CODES:
            return S3Problem(
                "missing_key", f"{self.url(where)} disappeared while it was verified"
            )
        return S3Problem("error", f"S3 answered {code or status} for {where}: {detail}")


def _object(entry: dict, prefix: str) -> S3Object:
    key = entry["Key"]
    relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
    return S3Object(
        key=key,
        relative=relative,
        size=int(entry.get("Size", 0)),
        last_modified=entry["LastModified"],
        etag=str(entry.get("ETag", "")).strip('"'),
        checksum_algorithms=tuple(entry.get("ChecksumAlgorithm") or ()),
    )
