"""Connection options that cannot be right fail naming the option, never a secret."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    MongoSession,
    client_arguments,
    connection_secrets,
    mask_uri,
    shown_target,
    uri_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_health import (
    health_settings,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_metrics import (
    parse_counts,
)
from tests.unit.plugins.module_utils.mongo7 import encrypted_client_key

BASE = {
    "login_port": 27017,
    "login_database": "admin",
    "server_selection_timeout": 0.5,
    "connect_timeout": 0.5,
    "socket_timeout": 1.0,
    "validate_certs": True,
}
SLASH = "mongodb://monitor:Sec/ret99@db1/"
AT = "mongodb://monitor:Sec@ret99@db1/"
BOTH = "mongodb://monitor:S/e@c:r@t99@db1,db2/?replicaSet=rs0"


@pytest.mark.parametrize(
    ("uri", "masked", "secrets"),
    [
        (SLASH, "mongodb://monitor:********@db1/", ["Sec/ret99"]),
        (AT, "mongodb://monitor:********@db1/", ["Sec@ret99"]),
        (
            BOTH,
            "mongodb://monitor:********@db1,db2/?replicaSet=rs0",
            ["S/e@c:r@t99"],
        ),
    ],
)
def test_unencoded_slash_and_at_in_the_password_are_masked(uri, masked, secrets):
    assert mask_uri(uri) == masked
    assert shown_target({"uri": uri}) == masked
    assert uri_secrets(uri) == secrets
    assert connection_secrets({"uri": uri}) == secrets


@pytest.mark.parametrize("uri", [SLASH, AT, BOTH])
def test_a_uri_with_an_unencoded_password_fails_without_the_password(uri):
    with pytest.raises(OptionError) as raised:
        MongoSession({**BASE, "uri": uri})

    text = str(raised.value)
    assert raised.value.option == "uri"
    assert "monitor:********@db1" in text
    for part in ("Sec", "ret99", "t99", "S/e"):
        assert part not in text


@pytest.mark.parametrize("option", ["ca_certs", "client_cert_file"])
def test_a_missing_tls_file_names_the_option_and_the_path(tmp_path, option):
    missing = str(tmp_path / "absent.pem")

    with pytest.raises(OptionError) as raised:
        MongoSession({**BASE, "login_host": "db1", "tls": True, option: missing})

    assert raised.value.option == option
    assert raised.value.value == missing
    assert str(raised.value) == (
        f"Option '{option}' names a file that cannot be read "
        f"(No such file or directory); got '{missing}'"
    )


def test_x509_with_a_password_names_login_password_and_hides_it():
    params = {
        **BASE,
        "login_host": "db1",
        "auth_mechanism": "MONGODB-X509",
        "login_user": "CN=monitor",
        "login_password": "hunter2",
    }

    with pytest.raises(OptionError) as raised:
        client_arguments(params)

    assert raised.value.option == "login_password"
    assert "hunter2" not in str(raised.value)
    assert "MONGODB-X509" in str(raised.value)


def test_x509_without_a_password_authenticates_against_external():
    params = {**BASE, "login_host": "db1", "auth_mechanism": "MONGODB-X509"}

    _host, kwargs = client_arguments(params)

    assert (kwargs["authMechanism"], kwargs["authSource"]) == (
        "MONGODB-X509",
        "$external",
    )


def test_an_external_mechanism_with_another_database_names_login_database():
    params = {
        **BASE,
        "login_host": "db1",
        "auth_mechanism": "GSSAPI",
        "login_user": "monitor@EXAMPLE.ORG",
        "login_password": "pw",
        "login_database": "trm",
    }

    with pytest.raises(OptionError) as raised:
        client_arguments(params)

    assert (raised.value.option, raised.value.value) == ("login_database", "trm")


@pytest.mark.parametrize("window", ["9999999999d", "36501d", "5215w", "52560001m"])
def test_a_window_beyond_a_hundred_years_names_the_count_and_value(window):
    counts = [{"name": "n", "collection": "c", "date_field": "at", "window": window}]

    with pytest.raises(OptionError) as raised:
        parse_counts(counts, database="trm")

    assert (raised.value.option, raised.value.value) == ("counts[0].window", window)
    assert "must be at most 36500d (100 years)" in str(raised.value)


def test_a_window_of_a_hundred_years_is_accepted():
    counts = [{"name": "n", "collection": "c", "date_field": "at", "window": "36500d"}]

    (parsed,) = parse_counts(counts, database="trm")

    assert parsed.window == timedelta(days=36500)


@pytest.mark.parametrize("option", ["slow_query_days", "unused_index_days"])
@pytest.mark.parametrize("value", [1e12, 36500.5, float("inf"), float("nan"), -1.0])
def test_look_back_days_out_of_bounds_name_the_option(option, value):
    with pytest.raises(OptionError) as raised:
        health_settings({option: value})

    assert raised.value.option == option
    assert str(value) in str(raised.value)


def test_look_back_days_within_bounds_are_kept():
    settings = health_settings({"slow_query_days": 36500, "unused_index_days": 0.5})

    assert (settings.slow_query_days, settings.unused_index_days) == (36500.0, 0.5)


@pytest.mark.parametrize("value", [0, -5, 1001, True, 2.5])
def test_a_sample_size_out_of_bounds_names_the_option(value):
    with pytest.raises(OptionError) as raised:
        health_settings({"sample_collections": value})

    assert (raised.value.option, raised.value.value) == ("sample_collections", value)
    assert "must be a whole number from 1 to 1000" in str(raised.value)


def test_a_passphrase_that_does_not_decrypt_the_key_names_it(tmp_path):
    params = {
        **BASE,
        "login_host": "db1",
        "tls": True,
        "client_cert_file": encrypted_client_key(tmp_path),
        "client_cert_password": "wrong-pass",
    }

    with pytest.raises(OptionError) as raised:
        MongoSession(params)

    assert raised.value.option == "client_cert_password"
    assert raised.value.value == "********"
    assert "wrong-pass" not in str(raised.value)
    assert str(raised.value).startswith(
        "Option 'client_cert_password' does not decrypt the key in client_cert_file"
    )
    with MongoSession({**params, "client_cert_password": "right-pass"}) as session:
        assert session.target == "mongodb://db1:27017/"
