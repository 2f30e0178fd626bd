"""AWX and scale: action groups, the execution environment and AWX as code.

No AWX can run here. ``FakeAwx`` serves the part of AWX's REST API (v2) that
awx.awx's modules call for playbooks/awx_configure.yml: lookups by name,
create, update, survey specs and credential links, with AWX's own checks of a
schedule's rule (DTSTART with a time zone, INTERVAL, no numbered BYDAY, parsed
by dateutil as AWX does), of a survey and of the playbook path. It does not run
jobs, sync projects (a project's update is reported successful at once) or
check permissions; those need a real AWX.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from dateutil.rrule import rrulestr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    DEFAULT_WINDOWS,
    open_at,
    parse_windows,
)
from lab.core import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOK = "playbooks/awx_configure.yml"
AWX_DATA = REPO / "awx"
LONDON = "Europe/London"
TOKEN = "awx-test-token-7f3c"
CREDENTIALS = ["TRM kubeconfig", "TRM vault"]
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("[!_]*.py"))


def load_data(name: str) -> dict:
    """Return one of the YAML files in awx/."""
    return yaml.safe_load((AWX_DATA / name).read_text())


def schedule_rule(entry: dict, *, zone: str = LONDON) -> str:
    """Return the rule awx_configure.yml gives AWX for a schedule entry."""
    start = load_data("schedules.yml")["awx_schedules_start_date"].replace("-", "")
    clock = entry["time"].replace(":", "")
    return f"DTSTART;TZID={zone}:{start}T{clock}00 RRULE:{entry['rrule']}"


def schedules_by_name() -> dict:
    """Return the calendar's schedules by name."""
    return {
        entry["name"]: entry for entry in load_data("schedules.yml")["awx_schedules"]
    }


def needs_awx_collection() -> None:
    """Fail, not skip, when awx.awx cannot be imported: the test setup installs it."""
    try:
        importlib.import_module("ansible_collections.awx.awx")
    except ImportError:
        pytest.fail(
            "awx.awx is not installed: pip install -r requirements-test.txt "
            "(the ansible package, 'ansible>=12,<13', brings it)"
        )


def recap(stdout: str) -> dict:
    """Return the counters of localhost's line in the play recap."""
    line = re.search(r"^localhost\s*:(.*)$", stdout, re.MULTILINE)
    assert line, stdout
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line[1])}


# The module_defaults group --------------------------------------------------


def test_module_defaults_group_sets_the_redis_connection_once(ansible, tmp_path):
    port = free_port()
    out = tmp_path / "result.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "module_defaults": {
                "group/trm.maintenance.redis": {
                    "login_host": "127.0.0.1",
                    "login_port": port,
                    "timeout": 2,
                }
            },
            "tasks": [
                {
                    "name": "Check Redis with the group's connection",
                    "trm.maintenance.redis_stats": {},
                    "register": "result",
                },
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {
                        "content": "{{ result | to_json }}",
                        "dest": str(out),
                    },
                },
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))

    run = ansible.playbook(path, "-i", "localhost,", "-c", "local")
    result = json.loads(out.read_text())

    assert run.rc == 0, run.stdout + run.stderr
    assert result["status"] == "critical"
    assert f"Redis at 127.0.0.1:{port} refused the connection" in result["summary"]
    assert result["metrics"]["up"] == 0


# The execution environment --------------------------------------------------


@pytest.fixture(scope="module")
def build_context(tmp_path_factory) -> Path:
    """Run ``ansible-builder create`` and return the build context."""
    builder = shutil.which("ansible-builder", path=str(BIN))
    if builder is None:
        pytest.fail(
            "ansible-builder is not installed: pip install -r requirements-test.txt"
        )
    context = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run(
        [
            builder,
            "create",
            "--file",
            "execution-environment.yml",
            "--context",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Complete! The build context can be found at" in proc.stdout
    return context


def test_containerfile_installs_the_python_and_system_requirements(build_context):
    containerfile = (build_context / "Containerfile").read_text()

    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.19,<2.20 ansible-runner' in (
        containerfile
    )
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "RUN /output/scripts/install-from-bindep" in containerfile
    assert (
        "RUN ansible-galaxy collection install --offline /build/trm.maintenance "
        "--collections-path /usr/share/ansible/collections"
    ) in containerfile


def test_build_context_holds_the_declared_requirements(build_context):
    built = build_context / "_build"
    galaxy = yaml.safe_load((built / "requirements.yml").read_text())

    assert (built / "requirements.txt").read_text() == (
        REPO / "requirements.txt"
    ).read_text()
    assert (built / "bindep.txt").read_text() == (REPO / "bindep.txt").read_text()
    assert [entry["name"] for entry in galaxy["collections"]] == ["awx.awx"]


def install_offline(build_context: Path, target: Path) -> subprocess.CompletedProcess:
    """Install the context's copy of the collection into ``target``, as the image does.

    The image build has no ansible.cfg of this checkout; with it, ansible-galaxy
    finds the checkout's own copy already installed and installs nothing.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH")
    }
    return subprocess.run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--offline",
            str(build_context / "_build" / "trm.maintenance"),
            "--collections-path",
            str(target),
        ],
        cwd=target.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_collection_in_the_context_installs_offline(build_context, tmp_path):
    target = tmp_path / "collections"
    proc = install_offline(build_context, target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = target / "ansible_collections" / "trm" / "maintenance"
    manifest = json.loads((installed / "MANIFEST.json").read_text())

    assert manifest["collection_info"]["name"] == "maintenance"
    assert sorted(p.stem for p in (installed / "plugins" / "modules").glob("*.py")) == (
        MODULES
    )
    assert sorted(p.name for p in (installed / "roles").iterdir()) == sorted(
        p.name for p in (REPO / "roles").iterdir()
    )


def test_builder_introspection_finds_the_collection_requirements(
    build_context, tmp_path
):
    collections = tmp_path / "collections"
    proc = install_offline(build_context, collections)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"

    subprocess.run(
        [
            sys.executable,
            str(build_context / "_build" / "scripts" / "introspect.py"),
            "introspect",
            str(collections),
            f"--write-pip={pip_out}",
            f"--write-bindep={bindep_out}",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )

    assert "pymongo>=4.6  # from collection trm.maintenance" in pip_out.read_text()
    assert "kubernetes>=29.0  # from collection trm.maintenance" in (
        pip_out.read_text()
    )
    assert "nodejs [platform:rpm platform:dpkg]  # from collection trm.maintenance" in (
        bindep_out.read_text()
    )


# The calendar as AWX schedules ----------------------------------------------

EVERY_DAY = {0, 1, 2, 3, 4, 5, 6}
# name: (weekdays, (hour, minute), runs in 2026)
CALENDAR = {
    "TRM daily checks, morning": (EVERY_DAY, (7, 0), 365),
    "TRM daily checks, evening": (EVERY_DAY, (19, 0), 365),
    "TRM weekly checks, theme of the day": ({0, 1, 2, 3, 4}, (9, 0), 261),
    "TRM monthly checks, theme of the week": ({6}, (3, 0), 52),
    "TRM quarterly checks": ({6}, (2, 0), 4),
    "TRM Sunday maintenance window": ({6}, (2, 0), 52),
}


def runs_in_2026(name: str) -> list:
    """Return a schedule's runs in 2026, in London time."""
    rule = rrulestr(schedule_rule(schedules_by_name()[name]))
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo(LONDON))
    return rule.between(start, start.replace(year=2027), inc=True)


def test_calendar_has_the_guides_schedules():
    assert sorted(schedules_by_name()) == sorted(CALENDAR)


@pytest.mark.parametrize("name", sorted(CALENDAR))
def test_schedule_runs_on_its_days_at_its_local_time(name):
    weekdays, clock, count = CALENDAR[name]
    runs = runs_in_2026(name)

    assert len(runs) == count
    assert {run.weekday() for run in runs} == weekdays
    assert {(run.hour, run.minute) for run in runs} == {clock}


def test_weekly_runs_count_the_weekdays_of_2026():
    day, weekdays = date(2026, 1, 1), 0
    while day.year == 2026:
        weekdays += day.weekday() < 5
        day += timedelta(days=1)

    assert len(runs_in_2026("TRM weekly checks, theme of the day")) == weekdays


def test_quarterly_runs_on_the_first_sunday_of_each_quarter():
    runs = runs_in_2026("TRM quarterly checks")

    assert [run.date() for run in runs] == [
        date(2026, 1, 4),
        date(2026, 4, 5),
        date(2026, 7, 5),
        date(2026, 10, 4),
    ]


def test_monthly_runs_on_sundays_inside_the_window_with_the_week_themes():
    runs = runs_in_2026("TRM monthly checks, theme of the week")
    december = [run.date() for run in runs if run.month == 12]

    # The Sundays of December 2026: weeks 1 to 4 of the calendar, then day 27,
    # which counts as week 4.
    assert december == [date(2026, 12, day) for day in (6, 13, 20, 27)]
    assert {(run.day - 1) // 7 + 1 for run in runs} == {1, 2, 3, 4, 5}
    first_sundays = [run for run in runs if run.day <= 7]
    assert len(first_sundays) == 12


@pytest.mark.parametrize(
    "name", ["TRM monthly checks, theme of the week", "TRM quarterly checks"]
)
def test_disruptive_cadences_start_inside_the_guards_windows(name):
    windows = parse_windows(DEFAULT_WINDOWS, default_timezone=LONDON)

    for run in runs_in_2026(name):
        opening = open_at(windows, run.astimezone(timezone.utc))
        assert opening is not None, run
        # The first Sunday of the month also opens the monthly window, where
        # the restore test and the failover drill have four hours.
        names = {w.name for w in windows if open_at([w], run.astimezone(timezone.utc))}
        assert ("monthly" in names) == (run.day <= 7), (run, names)


def test_schedules_keep_local_time_across_summer_time():
    runs = runs_in_2026("TRM daily checks, morning")
    by_day = {run.date(): run.astimezone(timezone.utc) for run in runs}

    # GMT in winter, BST (UTC+1) from 29 March to 25 October 2026
    assert by_day[date(2026, 1, 15)].hour == 7
    assert by_day[date(2026, 3, 30)].hour == 6
    assert by_day[date(2026, 10, 26)].hour == 7


@pytest.mark.parametrize("name", sorted(CALENDAR))
def test_schedule_rule_passes_awx_checks(name):
    assert awx_rrule_errors(schedule_rule(schedules_by_name()[name])) == []


def test_schedule_rule_checks_reject_what_awx_rejects():
    numbered = (
        "DTSTART;TZID=Europe/London:20250105T020000 "
        "RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=1SU"
    )

    assert awx_rrule_errors(numbered) == ["BYDAY with numeric prefix not supported"]
    assert awx_rrule_errors("DTSTART:20250105T020000 RRULE:FREQ=DAILY;INTERVAL=1") == [
        "DTSTART cannot be a naive datetime",
    ]


# The job templates and their surveys ----------------------------------------


def job_templates() -> dict:
    """Return the job templates by name."""
    return {
        entry["name"]: entry
        for entry in load_data("job_templates.yml")["awx_job_templates"]
    }


def role_variables() -> set:
    """Return every variable documented in a role's argument specs."""
    names = set()
    for spec in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names.update(entry.get("options", {}))
    return names


def play_variables(playbook: str) -> set:
    """Return the variables a playbook's plays set."""
    plays = yaml.safe_load((REPO / playbook).read_text())
    return {name for play in plays for name in play.get("vars", {})}


def test_every_job_template_runs_an_existing_playbook():
    playbooks = [t["playbook"] for t in job_templates().values()]

    assert [p for p in playbooks if not (REPO / p).is_file()] == []
    assert sorted({t["playbook"] for t in job_templates().values()}) == [
        "playbooks/daily.yml",
        "playbooks/incident_isolation.yml",
        "playbooks/maintenance_window.yml",
        "playbooks/monthly.yml",
        "playbooks/quarterly.yml",
        "playbooks/weekly.yml",
    ]


def test_daily_templates_split_the_day():
    parts = {
        name: t["extra_vars"]["maintenance_calendar_daily_part"]
        for name, t in job_templates().items()
        if t["playbook"] == "playbooks/daily.yml"
    }

    assert parts == {
        "TRM daily checks (morning)": "morning",
        "TRM daily checks (evening)": "evening",
    }


def test_every_schedule_launches_a_job_template():
    names = {entry["job_template"] for entry in schedules_by_name().values()}

    assert names - set(job_templates()) == set()


@pytest.mark.parametrize(
    ("survey", "variables"),
    [
        ("weekly.json", ["maintenance_calendar_date", "manual_reviews_done"]),
        (
            "monthly.json",
            [
                "maintenance_calendar_date",
                "manual_reviews_done",
                "maintenance_guard_override",
                "maintenance_guard_override_reason",
            ],
        ),
        (
            "quarterly.json",
            [
                "manual_reviews_done",
                "maintenance_guard_override",
                "maintenance_guard_override_reason",
            ],
        ),
        (
            "maintenance_window.json",
            [
                "maintenance_window_tasks_file",
                "maintenance_guard_override",
                "maintenance_guard_override_reason",
            ],
        ),
        ("incident_isolation.json", ["k8s_incident_reason"]),
    ],
)
def test_survey_asks_for_its_variables(survey, variables):
    spec = json.loads((AWX_DATA / "surveys" / survey).read_text())

    assert [question["variable"] for question in spec["spec"]] == variables
    assert awx_survey_errors(spec) == []


def test_manual_reviews_survey_takes_json_text():
    spec = json.loads((AWX_DATA / "surveys" / "quarterly.json").read_text())
    question = next(q for q in spec["spec"] if q["variable"] == "manual_reviews_done")

    assert (question["type"], question["default"]) == ("textarea", "{}")
    assert json.loads(question["default"]) == {}
    for review in (
        "review_architecture",
        "review_security_compliance",
        "review_business_continuity",
    ):
        assert review in question["question_description"]


def test_survey_variables_are_ones_the_playbooks_read():
    known = role_variables()
    unknown = {}
    for template in job_templates().values():
        if "survey" not in template:
            continue
        spec = json.loads((AWX_DATA / "surveys" / template["survey"]).read_text())
        allowed = known | play_variables(template["playbook"])
        unknown[template["name"]] = [
            q["variable"] for q in spec["spec"] if q["variable"] not in allowed
        ]

    assert unknown == {name: [] for name in unknown}


# awx_configure.yml against a controller ---------------------------------------


def test_awx_configure_passes_syntax_check(ansible):
    needs_awx_collection()
    run = ansible.playbook(PLAYBOOK, "--syntax-check")

    assert run.rc == 0, run.stdout + run.stderr
    assert "playbook: playbooks/awx_configure.yml" in run.stdout


def configure_vars(**extra) -> str:
    """Return the extra vars of an awx_configure.yml run, as JSON."""
    return json.dumps(
        {
            "ansible_python_interpreter": sys.executable,
            "controller_scm_url": "https://git.example.com/ops/trm-maintenance.git",
            "controller_ee_image": "registry.example.com/trm/maintenance-ee:1.0.0",
            **extra,
        }
    )


def test_awx_configure_reports_an_unreachable_controller(ansible):
    needs_awx_collection()
    port = free_port()

    run = ansible.playbook(
        PLAYBOOK,
        "--check",
        "-i",
        "localhost,",
        "-e",
        configure_vars(controller_host=f"http://127.0.0.1:{port}"),
        env={"CONTROLLER_OAUTH_TOKEN": TOKEN},
    )

    assert run.rc == 2, run.stdout + run.stderr
    assert recap(run.stdout) == {
        **recap(run.stdout),
        "ok": 3,
        "failed": 1,
        "changed": 0,
    }
    assert "TASK [Create or update the execution environment]" in run.stdout
    assert f"http://127.0.0.1:{port}/api/v2/execution_environments/" in run.stdout
    assert "Connection refused" in run.stdout


def test_awx_configure_names_what_is_missing(ansible):
    needs_awx_collection()
    run = ansible.playbook(
        PLAYBOOK,
        "-i",
        "localhost,",
        "-e",
        json.dumps({"ansible_python_interpreter": sys.executable}),
        env={"CONTROLLER_HOST": "", "TOWER_HOST": ""},
    )

    assert run.rc == 2
    assert (recap(run.stdout)["ok"], recap(run.stdout)["failed"]) == (0, 1)
    assert "Set controller_scm_url" in run.stdout
    assert "CONTROLLER_OAUTH_TOKEN" in run.stdout


# A stand-in for AWX's REST API -----------------------------------------------

KINDS = {
    "organizations": "organization",
    "credentials": "credential",
    "execution_environments": "execution_environment",
    "projects": "project",
    "project_updates": "project_update",
    "inventories": "inventory",
    "inventory_sources": "inventory_source",
    "job_templates": "job_template",
    "schedules": "schedule",
}
REQUIRED = {
    "execution_environments": ("name", "image"),
    "projects": ("name", "organization", "scm_type", "scm_url"),
    "inventories": ("name", "organization"),
    "inventory_sources": ("name", "inventory", "source"),
    "job_templates": ("name", "project", "playbook", "inventory"),
    "schedules": ("name", "rrule", "unified_job_template"),
}
REFERENCES = {
    "organization": ("organizations",),
    "credential": ("credentials",),
    "execution_environment": ("execution_environments",),
    "default_environment": ("execution_environments",),
    "project": ("projects",),
    "source_project": ("projects",),
    "inventory": ("inventories",),
    "unified_job_template": ("job_templates", "projects", "inventory_sources"),
}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice"}


def awx_rrule_errors(value: str) -> list:
    """Return what AWX's schedule serializer says against a rule."""
    errors = []
    starts = re.findall(r"DTSTART(;TZID=([^:]+))?:(\d{8}T\d{6}Z?)", value)
    if len(starts) != 1:
        return ["Valid DTSTART required in rrule"]
    zone, stamp = starts[0][1], starts[0][2]
    if not zone and not stamp.endswith("Z"):
        return ["DTSTART cannot be a naive datetime"]
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return ["A valid TZID must be provided"]
    rules = re.findall(r"RRULE:(\S+)", value)
    if not rules:
        errors.append("One or more rule required in rrule")
    for rule in rules:
        if "INTERVAL" not in rule:
            errors.append("INTERVAL required in rrule")
        if re.search(r"BYDAY=[-+]?\d+[A-Z]{2}", rule):
            errors.append("BYDAY with numeric prefix not supported")
    if not errors:
        try:
            rrulestr(value, forceset=True)
        except (ValueError, TypeError) as error:
            errors.append(f"rrule parsing failed validation: {error}")
    return errors


def awx_survey_errors(spec: dict) -> list:
    """Return what AWX's survey validation says against a survey spec."""
    if not isinstance(spec.get("spec"), list):
        return ["'spec' must be a list of items"]
    errors = []
    for index, question in enumerate(spec["spec"]):
        errors.extend(_question_errors(index, question))
    variables = [question.get("variable") for question in spec["spec"]]
    if len(variables) != len(set(variables)):
        errors.append("'variable' must be unique")
    return errors


def _question_errors(index: int, question: dict) -> list:
    """Return the problems of one survey question."""
    errors = [
        f"'{key}' missing from survey question {index}"
        for key in ("question_name", "variable", "type", "required")
        if key not in question
    ]
    if question.get("type") not in SURVEY_TYPES:
        errors.append(f"'{question.get('type')}' in survey question {index}")
    if not isinstance(question.get("required"), bool):
        errors.append(f"'required' of survey question {index} is not a boolean")
    default = question.get("default")
    if question.get("type") == "multiplechoice" and default not in question["choices"]:
        errors.append(f"default of survey question {index} is not a choice")
    low, high = question.get("min") or 0, question.get("max") or 1024
    sized = question.get("type") in ("text", "textarea") and default
    if sized and not low <= len(default) <= high:
        errors.append(f"default of survey question {index} breaks min or max")
    return errors


class FakeAwx:
    """What an AWX holds, with the API calls that read and change it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.objects = {endpoint: {} for endpoint in KINDS}
        self.surveys: dict = {}
        self.links: dict = {}
        self.calls: list = []
        self.last_id = 0
        self.lock = threading.Lock()
        self.add("organizations", {"name": "Default"})
        for name in CREDENTIALS:
            self.add("credentials", {"name": name, "organization": 1})

    def add(self, endpoint: str, fields: dict) -> dict:
        """Store a new object and return it."""
        self.last_id += 1
        url = f"/api/v2/{endpoint}/{self.last_id}/"
        item = {
            "id": self.last_id,
            "type": KINDS[endpoint],
            "url": url,
            "related": {"survey_spec": f"{url}survey_spec/", "update": f"{url}update/"},
            "summary_fields": {},
            **fields,
        }
        self.objects[endpoint][self.last_id] = item
        return item

    def named(self, endpoint: str, name: str) -> dict:
        """Return the one object of a kind with this name."""
        found = [i for i in self.objects[endpoint].values() if i["name"] == name]
        assert len(found) == 1, (endpoint, name, found)
        return found[0]

    def mutations(self) -> list:
        """Return the calls that changed something."""
        return [call for call in self.calls if call[0] != "GET"]

    def listing(self, endpoint: str, query: list) -> dict:
        """Answer a list view with AWX's filters: field=value and or__field=value."""
        if endpoint == "unified_job_templates":
            items = [
                item
                for kind in ("job_templates", "projects", "inventory_sources")
                for item in self.objects[kind].values()
            ]
        else:
            items = list(self.objects[endpoint].values())
        plain = [(k, v) for k, v in query if not k.startswith("or__")]
        either = [(k[4:], v) for k, v in query if k.startswith("or__")]
        found = [
            item
            for item in items
            if all(str(item.get(k)) == v for k, v in plain)
            and (not either or any(str(item.get(k)) == v for k, v in either))
        ]
        return {"count": len(found), "next": None, "previous": None, "results": found}

    def problems(self, endpoint: str, fields: dict) -> dict:
        """Return what AWX would refuse in a new or changed object."""
        errors = {
            key: ["This field is required."]
            for key in REQUIRED.get(endpoint, ())
            if fields.get(key) in (None, "")
        }
        for key, kinds in REFERENCES.items():
            value = fields.get(key)
            if value and not any(value in self.objects[kind] for kind in kinds):
                errors[key] = [f'Invalid pk "{value}" - object does not exist.']
        playbook = fields.get("playbook") if endpoint == "job_templates" else None
        if playbook and not (REPO / playbook).is_file():
            errors["playbook"] = ["Playbook not found for project."]
        rule = fields.get("rrule") if endpoint == "schedules" else None
        if rule and awx_rrule_errors(rule):
            errors["rrule"] = awx_rrule_errors(rule)
        return errors

    def create(self, endpoint: str, fields: dict) -> tuple:
        """Create an object, as POST on a list view does."""
        errors = self.problems(endpoint, fields)
        if errors:
            return 400, errors
        item = self.add(endpoint, fields)
        if endpoint == "projects":
            update = self.add(
                "project_updates", {"name": fields["name"], "status": "successful"}
            )
            item["summary_fields"]["current_update"] = {"id": update["id"]}
            item["scm_revision"] = "4f1d2c0"
        return 201, item

    def change(self, endpoint: str, ident: int, fields: dict) -> tuple:
        """Update an object, as PATCH does."""
        item = self.objects[endpoint].get(ident)
        if item is None:
            return 404, {"detail": "Not found."}
        errors = self.problems(endpoint, {**item, **fields})
        if errors:
            return 400, errors
        item.update(fields)
        return 200, item

    def survey(self, method: str, ident: int, body: dict) -> tuple:
        """Read, replace or delete a job template's survey spec."""
        if method == "GET":
            return 200, self.surveys.get(ident, {})
        if method == "DELETE":
            self.surveys.pop(ident, None)
            return 200, {}
        errors = awx_survey_errors(body)
        if errors:
            return 400, {"error": "; ".join(errors)}
        self.surveys[ident] = body
        return 200, {}

    def link(self, method: str, ident: int, body: dict) -> tuple:
        """List, associate or disassociate a job template's credentials."""
        linked = self.links.setdefault(ident, [])
        if method == "GET":
            results = [self.objects["credentials"][pk] for pk in linked]
            return 200, {"count": len(results), "next": None, "results": results}
        if body.get("disassociate"):
            linked.remove(body["id"])
        elif body["id"] in self.objects["credentials"]:
            linked.append(body["id"])
        else:
            return 400, {"msg": "No credential with that id"}
        return 204, None

    def answer(self, method: str, path: str, query: list, body: dict) -> tuple:
        """Route one API call."""
        parts = path.strip("/").split("/")[2:]
        with self.lock:
            self.calls.append((method, path))
            if len(parts) == 1 and method == "GET":
                return 200, self.listing(parts[0], query)
            if len(parts) == 1 and method == "POST":
                return self.create(parts[0], body)
            ident = int(parts[1])
            if len(parts) == 2 and method == "GET":
                item = self.objects[parts[0]].get(ident)
                return (200, item) if item else (404, {"detail": "Not found."})
            if len(parts) == 2 and method == "PATCH":
                return self.change(parts[0], ident, body)
            if parts[2:] == ["survey_spec"]:
                return self.survey(method, ident, body)
            if parts[2:] == ["credentials"]:
                return self.link(method, ident, body)
        return 405, {"detail": f'Method "{method}" not allowed.'}

    def handler(self) -> type:
        """Return a request handler class bound to this AWX."""
        awx = self

        class Handler(BaseHTTPRequestHandler):
            def do_any(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {awx.token}":
                    self.reply(
                        401, {"detail": "Authentication credentials were not provided."}
                    )
                    return
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}") if size else {}
                url = urlsplit(self.path)
                status, payload = awx.answer(
                    self.command, url.path, parse_qsl(url.query), body
                )
                self.reply(status, payload)

            do_GET = do_POST = do_PATCH = do_DELETE = do_any

            def reply(self, status: int, payload) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-API-Product-Name", "AWX")
                self.send_header("X-API-Product-Version", "24.6.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                """Keep the test output quiet."""

        return Handler


@contextlib.contextmanager
def serving(awx: FakeAwx):
    """Serve a fake AWX on loopback; yield the environment that points at it."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), awx.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {
            "CONTROLLER_HOST": f"http://127.0.0.1:{server.server_address[1]}",
            "CONTROLLER_OAUTH_TOKEN": TOKEN,
        }
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def configured(ansible):
    """Run awx_configure.yml against a fake AWX: create, again, then --check."""
    needs_awx_collection()
    awx = FakeAwx(TOKEN)
    extra = configure_vars(
        controller_credentials=CREDENTIALS,
        controller_inventory_source_path="inventories/example",
    )
    runs, changes = [], []
    with serving(awx) as env:
        for mode in ([], [], ["--check"]):
            before = len(awx.mutations())
            runs.append(
                ansible.playbook(
                    PLAYBOOK, "-i", "localhost,", "-e", extra, *mode, env=env
                )
            )
            changes.append(awx.mutations()[before:])
    return awx, runs, changes


def test_first_run_creates_everything(configured):
    awx, runs, _changes = configured

    assert runs[0].rc == 0, runs[0].stdout + runs[0].stderr
    assert {kind: len(awx.objects[kind]) for kind in KINDS} == {
        "organizations": 1,
        "credentials": 2,
        "execution_environments": 1,
        "projects": 1,
        "project_updates": 1,
        "inventories": 1,
        "inventory_sources": 1,
        "job_templates": 7,
        "schedules": 6,
    }


def test_second_run_and_check_mode_change_nothing(configured):
    _awx, runs, changes = configured

    assert [run.rc for run in runs[1:]] == [0, 0]
    assert [recap(run.stdout)["changed"] for run in runs[1:]] == [0, 0]
    assert changes[1:] == [[], []]


def test_project_and_inventory_come_from_the_repository(configured):
    awx = configured[0]
    project = awx.named("projects", "TRM maintenance")
    source = awx.named("inventory_sources", "TRM platform from TRM maintenance")
    ee = awx.named("execution_environments", "TRM maintenance")

    assert ee["image"] == "registry.example.com/trm/maintenance-ee:1.0.0"
    assert (project["scm_url"], project["scm_branch"], project["scm_type"]) == (
        "https://git.example.com/ops/trm-maintenance.git",
        "main",
        "git",
    )
    assert project["default_environment"] == ee["id"]
    assert (source["source"], source["source_path"], source["source_project"]) == (
        "scm",
        "inventories/example",
        project["id"],
    )


def test_job_templates_use_the_project_ee_and_credentials(configured):
    awx = configured[0]
    ee = awx.named("execution_environments", "TRM maintenance")["id"]
    credentials = sorted(awx.named("credentials", name)["id"] for name in CREDENTIALS)

    for name, data in job_templates().items():
        template = awx.named("job_templates", name)
        assert template["playbook"] == data["playbook"]
        assert template["execution_environment"] == ee
        assert template["project"] == awx.named("projects", "TRM maintenance")["id"]
        assert template["inventory"] == awx.named("inventories", "TRM platform")["id"]
        assert sorted(awx.links[template["id"]]) == credentials
        assert template["ask_variables_on_launch"] is True


def test_job_templates_carry_the_day_part_and_the_windows_zone(configured):
    awx = configured[0]
    morning = awx.named("job_templates", "TRM daily checks (morning)")
    window = awx.named("job_templates", "TRM Sunday maintenance window")

    assert json.loads(morning["extra_vars"]) == {
        "maintenance_calendar_daily_part": "morning",
        "maintenance_guard_timezone": LONDON,
    }
    assert json.loads(window["extra_vars"]) == {"maintenance_guard_timezone": LONDON}
    assert window["ask_job_type_on_launch"] is True
    assert morning["ask_job_type_on_launch"] is False


def test_job_templates_get_their_surveys(configured):
    awx = configured[0]
    surveys = {
        name: [q["variable"] for q in awx.surveys.get(t["id"], {}).get("spec", [])]
        for name, t in ((t["name"], t) for t in awx.objects["job_templates"].values())
    }
    enabled = {
        t["name"]: t["survey_enabled"] for t in awx.objects["job_templates"].values()
    }

    assert surveys["TRM monthly checks"] == [
        "maintenance_calendar_date",
        "manual_reviews_done",
        "maintenance_guard_override",
        "maintenance_guard_override_reason",
    ]
    assert surveys["TRM incident isolation"] == ["k8s_incident_reason"]
    assert surveys["TRM daily checks (morning)"] == []
    assert enabled == {
        "TRM daily checks (morning)": False,
        "TRM daily checks (evening)": False,
        "TRM weekly checks": True,
        "TRM monthly checks": True,
        "TRM quarterly checks": True,
        "TRM Sunday maintenance window": True,
        "TRM incident isolation": True,
    }


def test_schedules_follow_the_calendar_in_london_time(configured):
    awx = configured[0]
    created = {
        s["name"]: (s["rrule"], s["unified_job_template"], s["enabled"])
        for s in awx.objects["schedules"].values()
    }

    assert created == {
        "TRM daily checks, morning": (
            "DTSTART;TZID=Europe/London:20250101T070000 RRULE:FREQ=DAILY;INTERVAL=1",
            awx.named("job_templates", "TRM daily checks (morning)")["id"],
            True,
        ),
        "TRM daily checks, evening": (
            "DTSTART;TZID=Europe/London:20250101T190000 RRULE:FREQ=DAILY;INTERVAL=1",
            awx.named("job_templates", "TRM daily checks (evening)")["id"],
            True,
        ),
        "TRM weekly checks, theme of the day": (
            "DTSTART;TZID=Europe/London:20250101T090000 "
            "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR",
            awx.named("job_templates", "TRM weekly checks")["id"],
            True,
        ),
        "TRM monthly checks, theme of the week": (
            "DTSTART;TZID=Europe/London:20250101T030000 "
            "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=SU",
            awx.named("job_templates", "TRM monthly checks")["id"],
            True,
        ),
        "TRM quarterly checks": (
            "DTSTART;TZID=Europe/London:20250101T020000 "
            "RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTH=1,4,7,10;BYDAY=SU;BYSETPOS=1",
            awx.named("job_templates", "TRM quarterly checks")["id"],
            True,
        ),
        "TRM Sunday maintenance window": (
            "DTSTART;TZID=Europe/London:20250101T020000 "
            "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=SU",
            awx.named("job_templates", "TRM Sunday maintenance window")["id"],
            True,
        ),
    }
    assert {name: rule for name, (rule, _id, _on) in created.items()} == {
        name: schedule_rule(entry) for name, entry in schedules_by_name().items()
    }


def test_schedules_and_window_guard_share_the_time_zone(ansible):
    needs_awx_collection()
    awx = FakeAwx(TOKEN)
    extra = configure_vars(controller_timezone="America/New_York")

    with serving(awx) as env:
        run = ansible.playbook(PLAYBOOK, "-i", "localhost,", "-e", extra, env=env)

    assert run.rc == 0, run.stdout + run.stderr
    assert sorted(s["rrule"] for s in awx.objects["schedules"].values()) == sorted(
        schedule_rule(entry, zone="America/New_York")
        for entry in schedules_by_name().values()
    )
    assert {
        json.loads(t["extra_vars"])["maintenance_guard_timezone"]
        for t in awx.objects["job_templates"].values()
    } == {"America/New_York"}
    assert [len(linked) for linked in awx.links.values()] == [0] * 7
