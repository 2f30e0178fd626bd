"""Each role's defaults and its argument spec say the same thing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "meta").is_dir())


def _load(role: str) -> tuple[dict, dict]:
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    return defaults or {}, specs["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_documented_and_every_option_has_a_default(role):
    defaults, options = _load(role)
    own = {name for name in options if name.startswith(f"{role}_")}
    assert set(defaults) == own


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_documented_defaults_equal_the_defaults_file(role):
    defaults, options = _load(role)
    differing = {
        name: (value, options[name].get("default"))
        for name, value in defaults.items()
        if options[name].get("default") != value
    }
    assert differing == {}


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_role_variables_start_with_the_role_name(role):
    defaults, _unused = _load(role)
    assert [name for name in defaults if not name.startswith(f"{role}_")] == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_option_has_a_type_and_a_description(role):
    _unused, options = _load(role)
    incomplete = [
        name
        for name, spec in options.items()
        if "type" not in spec or not spec.get("description")
    ]
    assert incomplete == []
