"""Access-review listings show the fields the count names, nothing else."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.mongo_metrics import (
    listed_fields,
    listing_projection,
    run_mongo_metrics,
)
from tests.unit.plugins.module_utils.mongo7 import FakeMongo, Server

API_KEYS = {
    "name": "active_api_keys",
    "collection": "apikeys",
    "filter": {"active": True},
    "list_fields": ["name", "ownerId"],
    "list_sort": "name",
}


@pytest.mark.parametrize(
    ("fields", "projection"),
    [
        (("name", "ownerId"), {"name": 1, "ownerId": 1, "_id": 0}),
        (("_id", "name"), {"_id": 1, "name": 1}),
        (("owner.email",), {"owner.email": 1, "_id": 0}),
    ],
)
def test_the_projection_leaves_out_id_unless_it_is_listed(fields, projection):
    assert listing_projection(fields) == projection


def test_fields_a_server_returns_beyond_the_listed_ones_are_dropped():
    doc = {
        "_id": "tk_live_6f1c2a9e",
        "name": "ci",
        "owner": {"email": "ops@example.com", "team": "platform"},
        "scope": "write",
    }

    assert listed_fields(doc, ("name", "owner.email")) == {
        "name": "ci",
        "owner": {"email": "ops@example.com", "team": "platform"},
    }


def test_the_listing_asks_the_server_for_the_listed_fields_without_id():
    with FakeMongo(Server(counts={"apikeys": 3})) as fake:
        result = run_mongo_metrics(
            {
                **fake.params,
                "database": "trm",
                "counts": [API_KEYS],
                "now": "2025-03-09T14:30:00",
            }
        )
        (find,) = fake.received("find")

    assert result["metrics"] == {"active_api_keys": 3}
    assert find["find"] == "apikeys"
    assert find["projection"] == {"name": 1, "ownerId": 1, "_id": 0}
    assert find["sort"] == {"name": 1}
    assert result["checks"][0]["documents"] == []
