"""The failover drill's options: the health check speaks of its own keys."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_failover import (
    _health_endpoint,
)

URL = "http://health.example.org/healthz"


@pytest.mark.parametrize(
    ("extra", "option", "message"),
    [
        (
            {"timeout": 0},
            "health_check.timeout",
            "Option 'health_check.timeout' must be a number of seconds above zero; "
            "got 0",
        ),
        (
            {"status_code": [99]},
            "health_check.status_code",
            "Option 'health_check.status_code' must hold HTTP status codes "
            "(100-599); got [99]",
        ),
        (
            {"ca_path": "/no/such/ca.pem"},
            "health_check.ca_path",
            "Option 'health_check.ca_path' is not a readable file; "
            "got '/no/such/ca.pem'",
        ),
    ],
)
def test_health_check_errors_name_the_health_check_key(extra, option, message):
    with pytest.raises(OptionError) as raised:
        _health_endpoint({"url": URL, **extra})

    assert raised.value.option == option
    assert str(raised.value) == message
    assert "endpoints" not in str(raised.value)


def test_a_good_health_check_keeps_its_settings():
    endpoint = _health_endpoint(
        {"url": URL, "timeout": 2.5, "status_code": [200, 204], "json": None}
    )

    assert endpoint.url == URL
    assert endpoint.name == "health"
    assert endpoint.status_codes == (200, 204)
    assert endpoint.settings.timeout == 2.5
    assert _health_endpoint(None) is None
