"""The village's own words over real HTTP (real broker, SQLite, espeak-ng and ffmpeg): the
head edits the lexicon, technicians read it, every write is audited, the CSV goes out and
back in (a bad line named, nothing half-imported, limits answered 413), and an edited entry
re-renders the coming announcement that uses it, saying it the village's way. The page
works without JavaScript (each form posts; listen answers with the audio itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.clock import FakeClock
from hub.services.lexicon import MAX_CSV_BYTES, MAX_ENTRIES
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings, wait_for
from tests.integration.web_fixture import WebHub, form_value

pytestmark = pytest.mark.broker

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in the village


@pytest.fixture(scope="module")
def v(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    settings = hub_settings(
        broker,
        tmp_path_factory.mktemp("lexicon") / "hub",
        LANGSO_AUDIO__PRERENDER_MAX="0",
        LANGSO_AUDIO__CHIME="none",
    )
    h = WebHub(settings, FakeClock(T0))
    yield h
    h.stop()


def audits(v: InProcessHub, action: str) -> list[dict[str, Any]]:
    rows = v.hub.store.query(
        "SELECT actor, target, detail FROM audit_log WHERE action=? ORDER BY id", (action,)
    )
    return [{"actor": r[0], "target": r[1], **json.loads(r[2])} for r in rows]


def words(v: InProcessHub) -> dict[str, str]:
    r = v.http("head").get("/api/lexicon")
    r.raise_for_status()
    return {e["word"]: e["say"] for e in r.json()}


def test_edit_read_delete_by_role_audited(v: InProcessHub) -> None:
    head, tech, anon = v.http("head"), v.http("technician"), v.http()
    r = head.put("/api/lexicon/TYT", json={"say": "trạm y tế", "note": "xã"})
    assert r.status_code == 201, r.text
    assert r.json() | {"updated_at": None} == {
        "word": "TYT",
        "say": "trạm y tế",
        "note": "xã",
        "updated_by": "head1",
        "updated_at": None,
    }
    # The same word in another case and another spelling of its spaces: the same entry.
    r = head.put("/api/lexicon/tyt", json={"say": "trạm y tế xã"})
    assert r.status_code == 200 and r.json()["word"] == "tyt"
    assert head.put("/api/lexicon/đ/c", json={"say": "đồng chí"}).status_code == 201
    assert tech.get("/api/lexicon/TYT").json()["say"] == "trạm y tế xã"
    assert [e["word"] for e in tech.get("/api/lexicon", params={"q": "ĐỒNG"}).json()] == ["đ/c"]
    # Technicians read; only the head (and admin) write; residents see nothing.
    assert tech.put("/api/lexicon/HTX", json={"say": "hợp tác xã"}).status_code == 403
    assert tech.delete("/api/lexicon/TYT").status_code == 403
    assert anon.get("/api/lexicon").status_code == 401
    assert v.http("admin").put("/api/lexicon/HTX", json={"say": "hợp tác xã"}).status_code == 201
    # Refusals say why.
    r = head.put("/api/lexicon/" + "a" * 41, json={"say": "x"})
    assert r.status_code == 422 and "40 characters" in r.json()["detail"]
    r = head.put("/api/lexicon/TYT", json={"say": "trạm\x07 y tế"})
    assert r.status_code == 422 and "control character" in r.json()["detail"]
    assert head.put("/api/lexicon/TYT", json={"say": ""}).status_code == 422
    assert head.delete("/api/lexicon/HTX").status_code == 204
    assert head.delete("/api/lexicon/htx").status_code == 404
    assert [(a["actor"], a["target"], a["say"]) for a in audits(v, "lexicon.put")] == [
        ("head1", "TYT", "trạm y tế"),
        ("head1", "tyt", "trạm y tế xã"),
        ("head1", "đ/c", "đồng chí"),
        ("admin1", "HTX", "hợp tác xã"),
    ]
    assert [(a["actor"], a["target"]) for a in audits(v, "lexicon.delete")] == [("head1", "HTX")]


def test_csv_out_and_back_in_all_or_nothing(v: InProcessHub) -> None:
    head = v.http("head")
    head.put("/api/lexicon/X. Đông", json={"say": "xóm Đông", "note": 'tên "cũ", có dấu phẩy'})
    out = head.get("/api/lexicon.csv")
    assert out.status_code == 200 and out.headers["content-type"].startswith("text/csv")
    assert out.content.startswith(b"\xef\xbb\xbfword,say,note\r\n")
    before = words(v)
    # Back in as it came (BOM and all): nothing changes.
    r = head.post("/api/lexicon/import", content=out.content, headers={"content-type": "text/csv"})
    assert r.json() == {"added": 0, "changed": 0, "removed": 0, "unchanged": len(before)}
    # Edited in a spreadsheet (no BOM), sent as a form's file, replacing the list.
    text = out.content.decode("utf-8-sig").replace("xóm Đông", "xóm Đông Hạ")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("đ/c"))
    text += "\nĐ.Đông,xóm Đồng Đông\n"
    r = head.post(
        "/api/lexicon/import",
        params={"replace": "true"},
        files={"file": ("lexicon.csv", text.encode(), "text/csv")},
    )
    assert r.json() == {"added": 1, "changed": 1, "removed": 1, "unchanged": len(before) - 2}
    after = words(v)
    assert after["X. Đông"] == "xóm Đông Hạ" and "đ/c" not in after
    assert after["Đ.Đông"] == "xóm Đồng Đông"
    [done] = audits(v, "lexicon.import")[-1:]
    assert (done["actor"], done["added"], done["removed"]) == ("head1", 1, 1)

    # A bad line is named, and the good lines before it are not imported.
    bad = "HTX,hợp tác xã\nUBND,ủy ban nhân dân\nMTTQ\n".encode()
    r = head.post("/api/lexicon/import", content=bad, headers={"content-type": "text/csv"})
    assert r.status_code == 422 and r.json()["detail"].startswith("line 3: ")
    assert words(v) == after
    r = head.post(
        "/api/lexicon/import", content=b"HTX,h\xe1p", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]
    # Limits: the file's size, its rows, a kind of body that is no file.
    big = b"a,b\n" * (MAX_CSV_BYTES // 4 + 1)
    r = head.post("/api/lexicon/import", content=big, headers={"content-type": "text/csv"})
    assert r.status_code == 413
    many = "".join(f"w{i},s\n" for i in range(MAX_ENTRIES + 1)).encode()
    r = head.post("/api/lexicon/import", content=many, headers={"content-type": "text/csv"})
    assert r.status_code == 413 and "2000" in r.json()["detail"]
    r = head.post("/api/lexicon/import", json={"word": "x"})
    assert r.status_code == 415
    assert v.http("technician").post("/api/lexicon/import", content=b"a,b").status_code == 403
    assert words(v) == after


def test_an_edit_re_renders_the_coming_announcement_that_uses_it(v: InProcessHub) -> None:
    head = v.http("head")
    tonight = (T0 + timedelta(hours=11)).isoformat()
    made = {}
    for name, text in (("uses", "Họp dân xóm Ng.Tây tối nay."), ("other", "Họp chi bộ.")):
        r = head.post("/api/announcements", json={"title": name, "text": text, "start_at": tonight})
        assert r.status_code == 201, r.text
        made[name] = r.json()["id"]

    def row(name: str) -> dict[str, Any]:
        found = v.hub.store.one("SELECT * FROM announcements WHERE id=?", (made[name],))
        assert found is not None
        return dict(found)

    def spoken(name: str) -> str:
        meta = json.loads(Path(row(name)["render_wav"]).with_suffix(".json").read_text())
        return str(meta["text"])

    first, other = row("uses")["render_sha"], row("other")["render_sha"]
    assert head.put("/api/lexicon/Ng.Tây", json={"say": "Ngọc Tây"}).status_code == 201
    wait_for(lambda: row("uses")["render_sha"] != first, 30, "the announcement rendered again")
    assert "Ngọc Tây" in spoken("uses")
    assert row("other")["render_sha"] == other  # it does not use the word: left alone
    [redone] = [a for a in audits(v, "announcement.rerender") if a["target"] == made["uses"]]
    assert redone["lexicon"] == ["ng.tây"] and redone["actor"] == "system"

    # The listen button: an entry being typed, heard before it is saved.
    r = head.post("/api/lexicon/listen", json={"word": "Ng.Tây", "say": "Ngọc Tây Hạ"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/")
    assert len(r.content) > 1000
    assert v.http().post("/api/lexicon/listen", json={"text": "TYT"}).status_code == 401
    assert head.post("/api/lexicon/listen", json={}).status_code == 422


def test_the_page_without_javascript(v: WebHub) -> None:
    head = v.sign_in("truongthon-lex", "head")
    try:
        csrf = form_value(head.get("/app/lexicon").text, "csrf")
        r = head.post("/app/lexicon", data={"csrf": csrf, "word": "UBND", "say": "ủy ban nhân dân"})
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith("/app/lexicon?ok=saved#e-")
        page = head.get(r.headers["location"]).text
        assert 'data-word="UBND"' in page and "ủy ban nhân dân" in page
        # A refusal is said next to its field; what was typed stays.
        r = head.post("/app/lexicon", data={"csrf": csrf, "word": "UBND", "say": " "})
        assert r.status_code == 422
        assert 'id="lex-say-err"' in r.text and "Hãy viết cách loa đọc" in r.text
        assert 'value="UBND"' in r.text
        # Listen answers with the audio (a phone's player opens it).
        r = head.post("/app/lexicon/listen", data={"csrf": csrf, "word": "UBND"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("audio/")
        # A file with a bad line: the line is named on the page, nothing is imported.
        bad = "HTX,hợp tác xã\nMTTQ\n".encode()
        r = head.post(
            "/app/lexicon/import", data={"csrf": csrf}, files={"file": ("l.csv", bad, "text/csv")}
        )
        assert r.status_code == 422 and "Dòng 2: Mỗi dòng cần 2 hoặc 3 cột" in r.text
        assert "HTX" not in words(v)
        good = "HTX,hợp tác xã\n".encode()
        r = head.post(
            "/app/lexicon/import", data={"csrf": csrf}, files={"file": ("l.csv", good, "text/csv")}
        )
        assert r.status_code == 303 and "added=1" in r.headers["location"]
        assert "thêm 1" in head.get(r.headers["location"]).text
        r = head.post("/app/lexicon/delete", data={"csrf": csrf, "word": "htx"})
        assert r.status_code == 303 and "HTX" not in words(v)
    finally:
        head.close()

    tech = v.sign_in("kythuat-lex", "technician")
    try:
        page = tech.get("/app/lexicon").text
        assert 'data-word="UBND"' in page
        assert "lex-form" not in page and "lex-import" not in page and "lex-delete" not in page
        csrf = form_value(page, "csrf")
        r = tech.post("/app/lexicon", data={"csrf": csrf, "word": "UBND", "say": "x"})
        assert r.status_code == 403 and words(v)["UBND"] == "ủy ban nhân dân"
    finally:
        tech.close()
