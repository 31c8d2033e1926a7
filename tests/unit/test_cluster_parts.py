"""The speaker clusters' pure parts: the playout log's note and its words, a node's state on
the wire, the node's config file, the shipped snapserver.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.adapters import make_adapter
from devices.events import Availability, DecodeError, Reading
from devices.node.__main__ import BadConfig, load
from hub.broadcast.cluster_settings import ClusterSettings
from hub.broadcast.clusters import Cluster, Reach, _note, parse_note
from hub.broadcast.snapcast import snapserver_conf
from hub.web.staff_dashboard import clusters_text
from hub.words import Translator

REPO = Path(__file__).resolve().parents[2]


def test_the_note_says_who_heard_and_reads_back_in_words() -> None:
    dong, tay = Cluster("cum-dong", "Xóm Đông; (1)", "xom-dong"), Cluster("cum-tay", "Xóm Tây")
    bare = Cluster("cum-3")
    note = _note([dong, tay, bare], [dong], [bare])
    assert note == "clusters 1/3; missing: cum-tay (Xóm Tây); dropped: cum-3"
    parsed = parse_note(f"stopped by user:head1; {note}")
    assert parsed is not None
    assert (parsed.heard, parsed.total, parsed.missing, parsed.dropped) == (
        1,
        3,
        ("Xóm Tây",),
        ("cum-3",),
    )
    assert clusters_text(Translator("vi"), note) == (
        "Phát trên 1/3 cụm loa; Xóm Tây mất kết nối; cum-3 bị ngắt giữa chừng"
    )
    assert clusters_text(Translator("en"), "played") == ""
    assert Reach((dong, tay), frozenset({"cum-dong"})).note() == (
        "clusters 1/2; missing: cum-tay (Xóm Tây)"
    )


def test_a_nodes_state_becomes_readings() -> None:
    a = make_adapter("native", site="thon-dong")
    body = b'{"amp":"on","snapclient":"disconnected","signal_dbm":-67,"temp_c":51.5,"ts":1}'
    [r] = a.parse("village/thon-dong/speaker/cum-tay/state", body)
    assert isinstance(r, Reading) and r.kind == "speaker"
    assert dict(r.metrics) == {
        "amp_on": 1.0,
        "snapclient_connected": 0.0,
        "signal_dbm": -67,
        "temp_c": 51.5,
    }
    for bad in (b'{"amp":"maybe"}', b'{"volume_pct":"loud"}', b'{"colour":1}'):
        with pytest.raises(DecodeError):
            a.parse("village/thon-dong/speaker/cum-tay/state", bad)
    # Other native topics are as before.
    [s] = a.parse("village/thon-dong/speaker/cum-tay/status", b"offline")
    assert isinstance(s, Availability) and (s.kind, s.online) == ("speaker", False)


def test_the_node_config_is_checked_with_file_key_and_reason(tmp_path: Path) -> None:
    f = tmp_path / "node.toml"
    (tmp_path / "pw").write_text("s3cret\n")
    f.write_text(f'id = "cum-tay"\nsite = "x"\namp_pin = 17\npassword_file = "{tmp_path}/pw"\n')
    c = load(f)
    assert (c.id, c.amp_pin, c.password) == ("cum-tay", 17, "s3cret")
    for text, said in (
        ('id = "a"\nsite = "x"\namp_pin = 40\n', "amp_pin: a BCM"),
        ('id = "a"\nsite = "x"\namp_pin = 17\nmax_on_s = "long"\n', "max_on_s: must be"),
        ('id = "a"\nsite = "x"\namp_pin = 17\ncolour = 1\n', "colour: unknown key"),
        ('id = "a"\namp_pin = 17\n', "site: required"),
    ):
        f.write_text(text)
        with pytest.raises(BadConfig, match=said):
            load(f)


def test_the_shipped_snapserver_conf_is_the_one_the_settings_make() -> None:
    shipped = (REPO / "deploy" / "node" / "snapserver.conf").read_text()
    assert shipped == snapserver_conf(ClusterSettings(), datadir="/var/lib/snapserver")
