"""Start-up memory: modules only rarely used features need are not imported by `langso run`.

On a Pi the hub's resident memory at idle is mostly its imports. A fresh interpreter builds
the hub and the app as ``hub.cli.cmd_run`` does (without starting them) and reports what it
imported. That each feature still works once used is shown where the feature is tested:
pages (tests/integration/test_web.py, test_staff_pages.py, test_public.py), QR codes and
the Atom feed (test_public.py), /metrics (test_spine.py), e-mail (test_notify.py), sign-in
and passwords (test_web.py, test_spine.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Each lazy module, and where it is imported at the first use instead.
LAZY = {
    "jinja2": "hub/web/pages.py templates(): the first page rendered",
    "segno": "hub/web/public.py qr_svg(): the first QR code",
    "xml": "hub/web/public.py atom_feed() and segno: the first feed or QR code",
    "prometheus_client": "hub/api/prometheus.py, from hub/api/metrics.py: the first scrape",
    "smtplib": "hub/automation/notify.py _send_email(): the first mail",
    "argon2": "hub/services/users.py _hasher(): the first password hashed or checked",
}
#: The modules that use them: imported at start-up, so the check above means something.
USERS = (
    "hub.web.pages",
    "hub.web.public",
    "hub.api.metrics",
    "hub.automation.notify",
    "hub.services.users",
)

BUILD = """
import json, sys
from pathlib import Path

import hub.cli  # what the `langso` script imports
import uvicorn  # what cmd_run imports, before building
from hub.server import create_app
from hub.app import build_hub
from hub.settings import load_settings

hub = build_hub(load_settings(Path("config/hub.toml")))
app = create_app(hub)
json.dump(sorted(sys.modules), sys.stdout)
"""


@pytest.fixture(scope="module")
def start_up_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")}
    env.update(
        GPIOZERO_PIN_FACTORY="mock",
        LANGSO_DATA_DIR=str(tmp_path_factory.mktemp("lazy-imports")),
        LANGSO_AUDIO__SINK="null",
    )
    r = subprocess.run(
        [sys.executable, "-c", BUILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    modules: list[str] = json.loads(r.stdout)
    return set(modules)


def test_the_features_modules_are_imported_at_start_up(start_up_modules: set[str]) -> None:
    assert set(USERS) <= start_up_modules


@pytest.mark.parametrize("module", sorted(LAZY))
def test_a_rarely_used_module_waits_for_its_first_use(
    start_up_modules: set[str], module: str
) -> None:
    loaded = sorted(m for m in start_up_modules if m == module or m.startswith(module + "."))
    assert not loaded, f"imported at start-up, expected at {LAZY[module]}: {loaded}"
