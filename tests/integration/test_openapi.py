"""Schemathesis against the real API: no 5xx, and every answer as /openapi.json says it.

The hub runs as in production but for its clock (real broker, SQLite, espeak-ng and
ffmpeg, uvicorn on 127.0.0.1); schemathesis reads its /openapi.json and, for each
operation, sends a bounded number of generated requests (positive and negative, as a
signed-in admin so the writes go through, and a few without credentials), checking each
answer: no server error, a documented status, a documented content type, a body that
matches the documented schema. Deterministic (``derandomize``) and without shrinking, so
the run takes the same bounded time every time.

Not fuzzed, and why:
- ``GET /api/stream``: a response lasts ``STREAM_S`` (30 s) by design; its schema is a
  text stream, which there is nothing to check against.
- requests naming the fuzzing admin's own account in ``/api/users/{user_id}...``: a new
  password ends the admin's tokens (by design), and every later request would be a 401.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

import hub.api
from hub.clock import FakeClock
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings

pytestmark = pytest.mark.broker

#: Generated requests per operation and mode: small enough that the whole run stays
#: under a minute on two busy cores, large enough to reach the 4xx of each route.
EXAMPLES = {"admin positive": 20, "admin negative": 8, "anonymous": 3}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

#: Operations that cannot be fuzzed safely (see the module's docstring).
EXCLUDED = {("GET", "/api/stream")}


def operations() -> list[tuple[str, str]]:
    """Every operation the API modules route, found from the routers themselves, so a new
    route is fuzzed without anyone adding it here."""
    found = set()
    for info in pkgutil.iter_modules(hub.api.__path__):
        router = getattr(importlib.import_module(f"hub.api.{info.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute) and route.include_in_schema:
                found |= {(m, route.path) for m in route.methods if m != "HEAD"}
    return sorted(found - EXCLUDED, key=lambda op: (op[1], op[0]))


class Fuzzed:
    def __init__(self, hub: InProcessHub) -> None:
        self.hub = hub
        self.url = hub.url
        self.admin = {"Authorization": f"Bearer {hub.token('admin')}"}
        row = hub.hub.store.one("SELECT id FROM users WHERE username='admin1'")
        assert row is not None
        self.admin_id = int(row["id"])
        self.schema = schemathesis.openapi.from_url(f"{hub.url}/openapi.json")


@pytest.fixture(scope="module")
def fuzzed(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    h = InProcessHub(hub_settings(broker, tmp_path_factory.mktemp("openapi")), clock)
    yield Fuzzed(h)
    h.stop()


def test_the_schema_lists_every_operation_with_its_error_answers(fuzzed: Fuzzed) -> None:
    """Every error status is documented as ``{"detail": str}``, as the hub sends it (never
    FastAPI's default list of pydantic errors), and nothing routed is missing."""
    raw: dict[str, Any] = fuzzed.schema.raw_schema
    listed = {(m.upper(), p) for p, item in raw["paths"].items() for m in item}
    assert set(operations()) <= listed
    assert "HTTPValidationError" not in raw.get("components", {}).get("schemas", {})
    for path, item in raw["paths"].items():
        for method, op in item.items():
            for status, answer in op["responses"].items():
                if status.startswith("4"):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (
                        method,
                        path,
                        status,
                    )


@pytest.mark.parametrize(("method", "path"), operations())
def test_every_answer_matches_the_schema_and_none_is_a_server_error(
    fuzzed: Fuzzed, method: str, path: str
) -> None:
    operation = fuzzed.schema[path][method]
    failures: list[str] = []
    runs: list[tuple[str, GenerationMode, dict[str, str]]] = [
        ("admin positive", GenerationMode.POSITIVE, fuzzed.admin),
        ("admin negative", GenerationMode.NEGATIVE, fuzzed.admin),
        ("anonymous", GenerationMode.POSITIVE, {}),
    ]
    for name, mode, headers in runs:
        try:
            fuzz(fuzzed, operation, mode, EXAMPLES[name], headers)
        except Unsatisfiable:
            # Nothing of this operation can be wrong on purpose (no parameters, or only
            # free-text ones): its positive runs are all there is to send.
            assert mode is GenerationMode.NEGATIVE, name
        except Exception as e:  # one report per mode: every way the operation fails
            failures.append(f"[{name}] {e}")
    assert not failures, "\n\n".join(failures)


def fuzz(
    fuzzed: Fuzzed,
    operation: Any,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str],
) -> None:
    """``examples`` generated requests to one operation, each answer checked."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        user_id = (case.path_parameters or {}).get("user_id")
        assume(str(user_id) != str(fuzzed.admin_id))
        case.call_and_validate(base_url=fuzzed.url, headers=headers, checks=CHECKS)

    run()
