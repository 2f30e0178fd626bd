# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manual_review_entries filter: manual reviews as maintenance log entries."""

from __future__ import annotations

DOCUMENTATION = r"""
name: manual_review_entries
short_description: Turn the guide's manual reviews into maintenance log entries
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Takes the list of manual reviews and returns one C(kind=manual) entry per
    review for C(maintenance_results), with the review's items as a checklist.
  - A review listed in O(done) is marked done, with who and when.
positional: cadence, done
options:
  _input:
    description: The reviews, each with C(name), C(title), C(cadence) and C(items).
    type: list
    elements: dict
    required: true
  cadence:
    description: The cadence of the run; the entries carry it.
    type: str
    required: true
  done:
    description:
      - Reviews recorded as done, by name, each with C(by), C(at), C(notes).
      - JSON text is accepted too, as an AWX survey sends it; empty text means none.
    type: raw
    default: {}
"""

EXAMPLES = r"""
- name: Add the due reviews to the maintenance log
  ansible.builtin.set_fact:
    maintenance_results: >-
      {{ maintenance_results | default([])
         + (reviews | trm.maintenance.manual_review_entries('monthly', done)) }}
"""

RETURN = r"""
_value:
  description: One entry per review, in the order given.
  type: list
  elements: dict
"""

import json

from ansible.errors import AnsibleFilterError


def manual_review_entries(
    reviews: list, cadence: str, done: dict | None = None
) -> list:
    """Return a maintenance log entry for each review."""
    if not isinstance(reviews, list):
        kind = type(reviews).__name__
        raise AnsibleFilterError(f"The reviews must be a list; got a {kind}")
    if isinstance(done, str):
        # AWX surveys hand the record over as JSON text.
        try:
            done = json.loads(done) if done.strip() else {}
        except ValueError as error:
            raise AnsibleFilterError(
                f"manual_reviews_done is not valid JSON: {error}"
            ) from error
    if done is not None and not isinstance(done, dict):
        raise AnsibleFilterError(
            "The reviews recorded as done (manual_reviews_done) must be a mapping "
            f"of review names to {{by, at, notes}}; got {done!r}"
        )
    return [_entry(review, cadence, done or {}) for review in reviews]


def _entry(review: dict, cadence: str, done: dict) -> dict:
    if not isinstance(review, dict) or not review.get("name"):
        raise AnsibleFilterError(f"Each manual review needs a name; got {review!r}")
    record = done.get(review["name"]) or {}
    if not isinstance(record, dict):
        raise AnsibleFilterError(
            f"manual_reviews_done.{review['name']} must be a mapping of by, at "
            f"and notes; got {record!r}"
        )
    return {
        "kind": "manual",
        "section": "Manual reviews",
        "task": review.get("title") or review["name"],
        "cadence": cadence,
        "role": "manual_reviews",
        "items": list(review.get("items") or []),
        "done": bool(record),
        "done_by": record.get("by"),
        "done_at": str(record["at"]) if record.get("at") else None,
        "notes": record.get("notes"),
    }


class FilterModule:
    """The collection's filters for manual reviews."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {"manual_review_entries": manual_review_entries}
