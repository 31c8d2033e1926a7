"""Signing in and request bodies over real HTTP (the API and the web page of a hub served by
uvicorn, a real broker, a real SQLite file): one answer for a disabled account and a wrong
password, the password policy through /api/users, bodies cut off at their route's limit."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from hub.web.security import JSON_LIMIT
from tests.broker import Broker
from tests.hubtest import PASSWORD, hub_settings
from tests.integration.web_fixture import WebHub, form_value

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    h = WebHub(hub_settings(broker, tmp_path_factory.mktemp("signin")))
    yield h
    h.stop()


def _page_sign_in(web: WebHub, name: str, password: str) -> httpx.Response:
    with web.browser_client() as c:
        csrf = form_value(c.get("/app/login").text, "csrf")
        return c.post("/app/login", data={"csrf": csrf, "username": name, "password": password})


def test_a_disabled_account_is_answered_as_a_wrong_password_on_the_api_and_the_page(
    web: WebHub,
) -> None:
    web.user("con-dung", "technician")
    web.user("da-nghi", "technician")
    admin = web.http("admin")
    gone = next(u for u in admin.get("/api/users").json() if u["username"] == "da-nghi")
    assert admin.patch(f"/api/users/{gone['id']}", json={"disabled": True}).status_code == 200

    wrong = httpx.post(
        f"{web.url}/api/auth/token", data={"username": "con-dung", "password": "sai-mat-khau-1"}
    )
    disabled = httpx.post(
        f"{web.url}/api/auth/token", data={"username": "da-nghi", "password": PASSWORD}
    )
    assert (wrong.status_code, wrong.json()) == (disabled.status_code, disabled.json())
    assert wrong.status_code == 401 and "disabled" not in disabled.text

    page_wrong = _page_sign_in(web, "con-dung", "sai-mat-khau-2")
    page_disabled = _page_sign_in(web, "da-nghi", PASSWORD)
    assert page_wrong.status_code == page_disabled.status_code == 401

    def error(html: str) -> str:
        start = html.index('<p class="error"')
        return html[start : html.index("</p>", start)]

    assert error(page_wrong.text) == error(page_disabled.text)
    for text in ("đã bị khóa", "disabled"):
        assert text not in page_disabled.text


@pytest.mark.parametrize(
    ("password", "words"),
    [
        (" " * 12, "empty or only spaces"),
        ("   abc   ", "at least 10 characters"),
        ("zzzzzzzzzzzz", "one character repeated"),
        ("qwertyuiop", "most common"),
        ("matkhau123", "most common"),
    ],
)
def test_weak_passwords_are_refused_through_the_api_with_the_reason(
    web: WebHub, password: str, words: str
) -> None:
    r = web.http("admin").post(
        "/api/users", json={"username": "moi-vao", "role": "technician", "password": password}
    )
    assert r.status_code == 422 and words in r.json()["detail"], r.text


def _raw(web: WebHub, request: bytes) -> str:
    host, port = web.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while len(answer) < 65536:  # the 413 closes the connection: read to its end
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.decode("utf-8")


def test_a_json_body_over_its_cap_is_refused_declared_or_streamed(web: WebHub) -> None:
    big = b"[" * (JSON_LIMIT + 1)
    r = httpx.post(
        f"{web.url}/api/announcements",
        content=big,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and str(JSON_LIMIT) in r.json()["detail"]
    streamed = httpx.post(
        f"{web.url}/api/announcements",
        content=iter([big[: JSON_LIMIT // 2], big[JSON_LIMIT // 2 :]]),
        headers={"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    # A declared length over the cap is refused before a byte of the body is read.
    answer = _raw(
        web,
        b"POST /api/rules HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200000000\r\n\r\n",
    )
    assert answer.startswith("HTTP/1.1 413 ")


def test_an_upload_may_be_as_large_as_a_recording_and_no_larger(web: WebHub) -> None:
    limit_mb = web.settings.audio.max_upload_mb
    answer = _raw(
        web,
        b"POST /api/audio HTTP/1.1\r\nHost: hub\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        + f"Content-Length: {int((limit_mb + 1) * 1024 * 1024)}\r\n\r\n".encode(),
    )
    assert answer.startswith("HTTP/1.1 413 ") and f"{limit_mb:g} MB" in answer
    # Under the limit, a body larger than a JSON one reaches the route (401: no account).
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    body += b"\0" * (2 * JSON_LIMIT) + b"\r\n--xyz--\r\n"
    r = httpx.post(
        f"{web.url}/api/audio",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert r.status_code == 401
