"""The Redis client's options: URLs, masking, Sentinels, and how errors are named."""

from __future__ import annotations

import os
import socket
import ssl

import pytest
import redis

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_client import (
    RedisCallError,
    RedisSettings,
    classify,
    describe,
    mask_url,
    sentinel_from_params,
    settings_from_params,
    url_secrets,
)

SECRET = "s3cr3t/pass word"


def params(**options) -> dict:
    """Module params with the argument spec's defaults."""
    return {
        "login_host": "localhost",
        "login_port": 6379,
        "login_user": None,
        "login_password": None,
        "db": 0,
        "url": None,
        "tls": False,
        "validate_certs": True,
        "ca_certs": None,
        "client_cert_file": None,
        "client_key_file": None,
        "timeout": 5.0,
        "sentinel_hosts": None,
        "service_name": None,
        "sentinel_password": None,
        **options,
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@cache:6380/2", "redis://:********@cache:6380/2"),
        ("rediss://monitor:pw@cache/0", "rediss://monitor:********@cache/0"),
        ("redis://monitor@cache", "redis://monitor@cache"),
        ("redis://cache:6379", "redis://cache:6379"),
        ("redis://u:p%40ss@cache", "redis://u:********@cache"),
        ("redis://:pass/wo#rd@cache/1", "redis://:********@cache/1"),
        ("redis://cache/0", "redis://cache/0"),
    ],
)
def test_mask_url_hides_only_the_password(url, expected):
    assert mask_url(url) == expected


def test_url_secrets_returns_the_password_as_written_and_decoded():
    assert url_secrets("redis://u:p%40ss@cache") == ["p%40ss", "p@ss"]
    assert url_secrets("redis://:pass/word@cache") == ["pass/word", "pass/word"]
    assert url_secrets("redis://cache") == []
    assert url_secrets(None) == []


def test_url_gives_host_port_db_credentials_and_tls():
    settings = settings_from_params(
        params(url="rediss://monitor:p%40ss@cache.example.org:6380/3")
    )
    assert (settings.host, settings.port, settings.db) == ("cache.example.org", 6380, 3)
    assert (settings.username, settings.password) == ("monitor", "p@ss")
    assert settings.tls is True
    assert settings.shown_url == "rediss://monitor:********@cache.example.org:6380/3"


def test_url_without_port_or_db_uses_the_defaults_and_login_options():
    settings = settings_from_params(
        params(url="redis://cache", login_user="monitor", login_password=SECRET)
    )
    assert (settings.port, settings.db, settings.tls) == (6379, 0, False)
    assert (settings.username, settings.password) == ("monitor", SECRET)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"url": "http://cache:6379"}, "must be a redis:// or rediss:// URL"),
        ({"url": "redis://cache:port"}, "is not a valid redis:// or rediss:// URL"),
        ({"url": "redis://:pass/word@cache"}, "percent-encode"),
        ({"url": "redis://cache/zero"}, "must end in a database number"),
        ({"url": "redis://cache/0?ssl_cert_reqs=none"}, "must not carry query"),
        (
            {"url": "redis://:one@cache", "login_password": "two"},
            "carries a password and login_password holds another",
        ),
        (
            {"url": "redis://alice@cache", "login_user": "bob"},
            "names a user and login_user names another",
        ),
        ({"login_port": 0}, "must be a port number"),
        ({"login_port": 70000}, "must be a port number"),
        ({"db": -1}, "must be a database number"),
        ({"timeout": 0}, "above 0"),
        ({"timeout": "soon"}, "must be a number of seconds"),
    ],
)
def test_bad_connection_options_name_the_option(options, problem):
    with pytest.raises(OptionError) as raised:
        settings_from_params(params(**options))
    assert problem in str(raised.value)
    assert raised.value.option in options


def test_a_bad_url_is_shown_without_its_password():
    with pytest.raises(OptionError) as raised:
        settings_from_params(params(url=f"redis://:{SECRET}@cache:port"))
    assert SECRET not in str(raised.value)
    assert "********" in str(raised.value)


def test_settings_never_show_the_password_in_their_repr():
    settings = RedisSettings(host="cache", port=6379, password=SECRET)
    assert SECRET not in repr(settings)


def test_tls_settings_become_redis_py_keyword_arguments(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = settings_from_params(
        params(tls=True, validate_certs=False, ca_certs=str(ca))
    )
    kwargs = settings.client_kwargs()
    assert kwargs["ssl"] is True
    assert kwargs["ssl_cert_reqs"] == "none"
    assert kwargs["ssl_check_hostname"] is False
    assert kwargs["ssl_ca_certs"] == str(ca)
    assert kwargs["single_connection_client"] is True
    assert kwargs["retry"].get_retries() == 0


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("sentinel-0", ("sentinel-0", 26379)),
        ("sentinel-0:26380", ("sentinel-0", 26380)),
        ("[::1]:26381", ("::1", 26381)),
        ("[::1]", ("::1", 26379)),
    ],
)
def test_sentinel_hosts_take_an_optional_port(item, expected):
    sentinel = sentinel_from_params(params(sentinel_hosts=[item], service_name="trm"))
    assert sentinel.hosts == (expected,)


@pytest.mark.parametrize("item", ["sentinel-0:port", "sentinel-0:0", ":26379"])
def test_bad_sentinel_hosts_are_refused(item):
    with pytest.raises(OptionError) as raised:
        sentinel_from_params(params(sentinel_hosts=[item], service_name="trm"))
    assert raised.value.option == "sentinel_hosts"


def test_sentinel_hosts_need_a_service_name():
    with pytest.raises(OptionError) as raised:
        sentinel_from_params(params(sentinel_hosts=["sentinel-0"]))
    assert raised.value.option == "service_name"


def _raised_from(outer: Exception, inner: BaseException) -> Exception:
    """``outer`` as redis-py raises it: while handling ``inner``."""
    try:
        try:
            raise inner
        except BaseException:
            # redis-py raises its error while handling the socket's, not from it.
            raise outer  # noqa: B904
    except Exception as error:
        return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (redis.AuthenticationError("invalid username-password pair"), "auth"),
        (redis.ResponseError("NOAUTH Authentication required."), "auth"),
        (redis.exceptions.NoPermissionError("NOPERM no permissions"), "permission"),
        (redis.ResponseError("ERR unknown command 'CONFIG'"), "unsupported"),
        (redis.ResponseError("ERR unknown subcommand 'GET'"), "unsupported"),
        (redis.ResponseError("ERR something else"), "response"),
        (redis.BusyLoadingError("Redis is loading"), "loading"),
        (redis.TimeoutError("Timeout reading from socket"), "timeout"),
        (
            _raised_from(
                redis.ConnectionError("Error 111 connecting"), ConnectionRefusedError()
            ),
            "connection_refused",
        ),
        (
            _raised_from(
                redis.ConnectionError("Error 1 connecting"), ssl.SSLError(1, "bad")
            ),
            "tls",
        ),
        (
            _raised_from(
                redis.ConnectionError("Error -2 connecting"), socket.gaierror(-2, "x")
            ),
            "dns",
        ),
        (redis.ConnectionError("Connection closed by server."), "connection"),
    ],
)
def test_errors_are_classified_by_what_went_wrong(error, kind):
    assert classify(error) == kind


def test_down_kinds_are_the_ones_that_mean_the_server_serves_nobody():
    assert RedisCallError("timeout", "x").server_down is True
    assert RedisCallError("connection_refused", "x").server_down is True
    assert RedisCallError("auth", "x").server_down is False
    assert RedisCallError("tls", "x").server_down is False


def test_messages_name_the_server_and_the_timeout():
    settings = RedisSettings(host="cache", port=6380, timeout=1.5)
    text = describe("timeout", redis.TimeoutError("x"), settings, "INFO")
    assert text == "Redis at cache:6380 did not answer INFO within 1.5 s (the timeout)"


# TLS files


@pytest.fixture
def pem_files(tmp_path) -> dict:
    """Three files standing in for the CA, the certificate and the key."""
    paths = {}
    for option in ("ca_certs", "client_cert_file", "client_key_file"):
        paths[option] = tmp_path / f"{option}.pem"
        paths[option].write_text("-----BEGIN CERTIFICATE-----\n")
    return {option: str(path) for option, path in paths.items()}


def test_existing_tls_files_reach_the_connection(pem_files):
    settings = settings_from_params(params(tls=True, **pem_files))
    kwargs = settings.tls_kwargs()
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == (
        pem_files["ca_certs"],
        pem_files["client_cert_file"],
        pem_files["client_key_file"],
    )


@pytest.mark.parametrize(
    ("option", "fix"),
    [
        ("ca_certs", "the CA certificates that signed the server's certificate"),
        ("client_cert_file", "the client certificate"),
        ("client_key_file", "the client certificate's private key"),
    ],
)
@pytest.mark.parametrize("url", [None, "rediss://cache:6380/0"])
def test_a_missing_tls_file_is_bad_input_naming_option_and_path(
    pem_files, tmp_path, option, fix, url
):
    missing = str(tmp_path / "gone" / f"{option}.pem")
    with pytest.raises(OptionError) as raised:
        settings_from_params(
            params(tls=True, url=url, **{**pem_files, option: missing})
        )
    assert raised.value.option == option
    assert raised.value.value == missing
    assert str(raised.value) == (
        f"Option '{option}' names a file that does not exist; set {option} to "
        f"the PEM file of {fix}; got '{missing}'"
    )


def test_a_folder_is_not_a_tls_file(pem_files, tmp_path):
    with pytest.raises(OptionError) as raised:
        settings_from_params(
            params(tls=True, **{**pem_files, "ca_certs": str(tmp_path)})
        )
    assert raised.value.option == "ca_certs"
    assert str(raised.value).startswith("Option 'ca_certs' is a folder, not a file")


def test_an_unreadable_tls_file_says_so(pem_files, monkeypatch):
    # Root reads every file, so the permission is denied by the test.
    real_access = os.access
    denied = pem_files["client_key_file"]
    monkeypatch.setattr(
        os, "access", lambda path, mode: path != denied and real_access(path, mode)
    )
    with pytest.raises(OptionError) as raised:
        settings_from_params(params(tls=True, **pem_files))
    assert raised.value.option == "client_key_file"
    assert "cannot read" in str(raised.value)


def test_a_key_without_its_certificate_is_refused(pem_files):
    files = {**pem_files, "client_cert_file": None}
    with pytest.raises(OptionError) as raised:
        settings_from_params(params(tls=True, **files))
    assert raised.value.option == "client_key_file"
    assert "needs client_cert_file" in str(raised.value)
