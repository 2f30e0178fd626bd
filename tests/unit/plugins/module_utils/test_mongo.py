"""The MongoDB client layer: options to pymongo arguments, secrets, errors."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Timestamp
from pymongo.errors import (
    ConfigurationError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    AuthenticationFailed,
    MongoSession,
    Refused,
    Unreachable,
    _configuration_problem,
    client_arguments,
    connection_secrets,
    mask_uri,
    plain,
    server_problem,
    shown_target,
    uri_secrets,
)
from lab.core import free_port

BASE = {
    "login_port": 27017,
    "login_database": "admin",
    "server_selection_timeout": 5.0,
    "connect_timeout": 5.0,
    "socket_timeout": 30.0,
    "validate_certs": True,
}


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        (
            "mongodb://monitor:s3cret@db1,db2/?replicaSet=rs0",
            "mongodb://monitor:********@db1,db2/?replicaSet=rs0",
        ),
        (
            "mongodb+srv://monitor:p%40ss@cluster0.example.org/trm",
            "mongodb+srv://monitor:********@cluster0.example.org/trm",
        ),
        ("mongodb://monitor@db1/", "mongodb://monitor@db1/"),
        (
            "mongodb://db1/?tls=true&tlsCertificateKeyFilePassword=pem-pass&w=1",
            "mongodb://db1/?tls=true&tlsCertificateKeyFilePassword=********&w=1",
        ),
    ],
)
def test_mask_uri_hides_passwords_and_secret_parameters(uri, masked):
    assert mask_uri(uri) == masked


def test_uri_secrets_returns_raw_and_decoded_password():
    uri = "mongodb://monitor:p%40ss@db1/?tlsCertificateKeyFilePassword=pem"
    assert uri_secrets(uri) == ["p%40ss", "p@ss", "pem"]
    assert uri_secrets("mongodb://db1/") == []
    assert uri_secrets(None) == []


def test_connection_secrets_collects_every_secret_option():
    params = {
        **BASE,
        "uri": "mongodb://u:from-uri@db1/",
        "login_password": "from-option",
        "client_cert_password": "pem-pass",
    }
    assert connection_secrets(params) == ["from-option", "pem-pass", "from-uri"]


def test_shown_target_without_uri_names_host_and_port():
    assert shown_target({**BASE, "login_host": "db1"}) == "mongodb://db1:27017/"
    assert shown_target(BASE) == "mongodb://localhost:27017/"


def test_client_arguments_for_a_host_with_credentials_and_tls():
    params = {
        **BASE,
        "login_host": "db1",
        "login_user": "monitor",
        "login_password": "pw",
        "login_database": "ops",
        "auth_mechanism": "SCRAM-SHA-256",
        "replica_set": "rs0",
        "tls": True,
        "ca_certs": "/etc/ca.pem",
        "client_cert_file": "/etc/client.pem",
        "client_cert_password": "pem",
        "validate_certs": False,
    }

    host, kwargs = client_arguments(params)

    assert host == "db1"
    assert kwargs == {
        "appname": "trm.maintenance",
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
        "socketTimeoutMS": 30000,
        "retryReads": False,
        "retryWrites": False,
        "port": 27017,
        "username": "monitor",
        "password": "pw",
        "authSource": "ops",
        "authMechanism": "SCRAM-SHA-256",
        "replicaSet": "rs0",
        "tls": True,
        "tlsCAFile": "/etc/ca.pem",
        "tlsCertificateKeyFile": "/etc/client.pem",
        "tlsCertificateKeyFilePassword": "pem",
        "tlsInsecure": True,
    }


def test_client_arguments_for_a_uri_keep_the_uri_and_no_port():
    host, kwargs = client_arguments({**BASE, "uri": "mongodb://db1/?w=1"})

    assert host == "mongodb://db1/?w=1"
    assert "port" not in kwargs and "tls" not in kwargs


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({**BASE, "uri": "http://u:pw@db1/"}, "uri"),
        ({**BASE, "server_selection_timeout": 0}, "server_selection_timeout"),
        ({**BASE, "socket_timeout": -1.0}, "socket_timeout"),
    ],
)
def test_options_that_cannot_be_right_raise_option_error(params, option):
    with pytest.raises(OptionError) as raised:
        client_arguments(params)
    assert raised.value.option == option
    assert "pw" not in str(raised.value)


def test_invalid_uri_names_the_option_and_masks_the_password():
    with pytest.raises(OptionError) as raised:
        MongoSession({**BASE, "uri": "mongodb://monitor:hunter2@db1:notaport/"})

    assert raised.value.option == "uri"
    assert "hunter2" not in str(raised.value)
    assert "mongodb://monitor:********@db1:notaport/" in str(raised.value)
    assert "is not a valid MongoDB URI" in str(raised.value)


def test_unresolvable_srv_name_is_unreachable_not_bad_input():
    error = ConfigurationError("The DNS query name does not exist: _mongodb._tcp.x.")
    found = _configuration_problem(error, "mongodb+srv://x.example.invalid/")
    assert isinstance(found, Unreachable)
    assert found.status == "critical"


def test_unreachable_server_is_reported_within_the_selection_timeout():
    params = {**BASE, "uri": f"mongodb://127.0.0.1:{free_port()}/"}
    params["server_selection_timeout"] = 1.0
    started = time.monotonic()

    with MongoSession(params) as session, pytest.raises(Unreachable) as raised:
        session.hello()

    assert time.monotonic() - started < 3.0
    assert raised.value.reason.startswith("Cannot reach MongoDB at mongodb://127.0.0")
    assert "Topology Description" not in raised.value.reason


@pytest.mark.parametrize(
    ("error", "kind", "status", "starts"),
    [
        (
            OperationFailure("not authorized on admin", 13, {"errmsg": "nope"}),
            Refused,
            "unknown",
            "Not authorised to run serverStatus: nope",
        ),
        (
            OperationFailure("no such command", 59),
            Refused,
            "unknown",
            "The server does not support serverStatus",
        ),
        (
            OperationFailure("Authentication failed.", 18),
            AuthenticationFailed,
            "unknown",
            "MongoDB at mongodb://db1/ rejected the credentials",
        ),
        (
            ExecutionTimeout("operation exceeded time limit", 50),
            Refused,
            "unknown",
            "serverStatus did not finish within the socket timeout",
        ),
        (
            NetworkTimeout("timed out"),
            Refused,
            "unknown",
            "serverStatus got no answer within the socket timeout",
        ),
        (
            ServerSelectionTimeoutError("db1:27017: connection refused, Timeout: 5s"),
            Unreachable,
            "critical",
            "Cannot reach MongoDB at mongodb://db1/: db1:27017: connection refused",
        ),
    ],
)
def test_server_errors_become_problems(error, kind, status, starts):
    problem = server_problem(error, "serverStatus", "mongodb://db1/")

    assert problem.__class__ is kind
    assert problem.status == status
    assert problem.reason.startswith(starts)


def test_plain_turns_bson_values_into_json_values():
    moment = datetime(2025, 3, 9, 14, 30, 0, 123000)
    oid = ObjectId("64f1c2a9e4b0a1b2c3d4e5f6")
    value = {
        "when": moment,
        "ts": Timestamp(1741530600, 3),
        "id": oid,
        "n": Int64(5),
        "amount": Decimal128("49.90"),
        "blob": Binary(b"\x00" * 32),
        "list": [moment, None, True],
    }

    assert plain(value) == {
        "when": "2025-03-09T14:30:00.123Z",
        "ts": "2025-03-09T14:30:00.000Z",
        "id": "64f1c2a9e4b0a1b2c3d4e5f6",
        "n": 5,
        "amount": "49.90",
        "blob": "<32 bytes>",
        "list": ["2025-03-09T14:30:00.123Z", None, True],
    }
    assert (
        plain(datetime(2025, 1, 1, tzinfo=timezone.utc)) == "2025-01-01T00:00:00.000Z"
    )
