"""The fleet surface: the meta envelope, `gnt merge`, `--prom` textfiles and `--npd` lines.

Streams are made by running gnt for real (in-process) and then given other node names, as
if many nodes had sent them; metrics are read back with prometheus_client's own parser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import run_gnt
from helpers.jsonl import check_stream, records
from helpers.vxlan_frames import vxlan_frame, write_pcap

ROOT = Path(__file__).resolve().parents[2]


def as_node(stream: str, node: str, started: str | None = None) -> str:
    """The same stream, as node `node` sent it."""
    lines = stream.splitlines()
    meta = json.loads(lines[0])
    meta["node"] = node
    if started:
        meta["started"] = started
    return "\n".join([json.dumps(meta), *lines[1:]]) + "\n"


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("caps")
    good, bad = str(base / "good.pcap"), str(base / "bad.pcap")
    write_pcap(good, [vxlan_frame("zero", sport=1), vxlan_frame("ok", sport=2)])
    write_pcap(bad, [vxlan_frame("zero", sport=1), vxlan_frame("ffff", sport=2), vxlan_frame("ffff", sport=3)])
    return {"good": good, "bad": bad}


@pytest.fixture(scope="module")
def scans(captures: dict[str, str]) -> dict[str, str]:
    out = {}
    for kind, path in captures.items():
        code, stdout, _ = run_gnt("vxlan-csum", "scan", "--json", "--pcap", path)
        assert code == (1 if kind == "bad" else 0)
        out[kind] = stdout
    return out


def test_every_json_stream_opens_with_meta() -> None:
    code, out, _ = run_gnt("ip6", "--json", "::1", "fe80::1")
    assert code == 0
    meta, *rest = check_stream(out)
    assert meta["type"] == "meta" and meta["schema"] == "gnt/v1"
    assert meta["command"] == "ip6" and meta["argv"] == ["ip6", "--json", "::1", "fe80::1"]
    assert meta["node"] == os.uname().nodename
    with open("/proc/sys/kernel/random/boot_id") as handle:
        assert meta["boot_id"] == handle.read().strip()
    assert [o["type"] for o in rest] == ["address", "address"]


def test_the_schema_check_can_fail() -> None:
    """A field the schema does not declare, or a wrong type, is caught (the check is real)."""
    _, out, _ = run_gnt("ip6", "--json", "::1")
    meta, obj = out.splitlines()
    extra = json.loads(obj) | {"surprise": 1}
    with pytest.raises(AssertionError, match="does not match"):
        check_stream(meta + "\n" + json.dumps(extra) + "\n")
    wrong = json.loads(obj) | {"compressed": 5}
    with pytest.raises(AssertionError, match="does not match"):
        check_stream(meta + "\n" + json.dumps(wrong) + "\n")
    with pytest.raises(AssertionError, match="open with its meta"):
        check_stream(obj + "\n")


def test_schemas_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "build" / "gen_schemas.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + "run: python build/gen_schemas.py"


def test_merge_names_exactly_the_bad_nodes(tmp_path: Path, scans: dict[str, str]) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    bad = {"node-07", "node-31"}
    for n in range(40):
        node = f"node-{n:02d}"
        (fleet / f"{node}.json").write_text(as_node(scans["bad" if node in bad else "good"], node))
    code, out, err = run_gnt("merge", str(fleet))
    assert code == 1, err
    assert out.splitlines()[0] == "vxlan-csum scan: 2 of 40 nodes need a look"
    assert "  2 bad checksums: node-07, node-31" in out
    assert "  38 ok" in out
    detail = [line.split() for line in out.splitlines() if line.startswith("    ")]
    assert {d[0] for d in detail} == bad  # only the bad nodes get a detail line
    assert all("2 bad outer (2 0xffff)" in line for line in out.splitlines() if line.startswith("    node"))
    code, out, _ = run_gnt("merge", "--json", str(fleet))
    objs = records(out)
    (fleet_obj,) = [o for o in objs if o["type"] == "fleet"]
    assert fleet_obj["verdicts"]["bad checksums"] == sorted(bad) and fleet_obj["bad"] == 2
    assert objs[-1] == {"type": "merge_summary", "streams": 40, "nodes": 40, "bad_nodes": 2,
                        "malformed_lines": 0, "commands": 1}


def test_merge_stdin_concatenated_streams_and_newest_run_wins(scans: dict[str, str]) -> None:
    streams = (as_node(scans["bad"], "a", "2026-01-01T00:00:00Z") + as_node(scans["good"], "b")
               + as_node(scans["good"], "a", "2026-01-01T00:05:00Z"))  # a was fixed, then re-checked
    code, out, _ = run_gnt("merge", "-", stdin=streams)
    assert code == 0, out
    assert out.splitlines()[0] == "vxlan-csum scan: all 2 nodes ok"


def test_merge_malformed_line_is_named_and_the_rest_is_read(tmp_path: Path, scans: dict[str, str]) -> None:
    broken = tmp_path / "n1.json"
    broken.write_text(as_node(scans["good"], "n1") + "{not json\n" + as_node(scans["bad"], "n2"))
    orphan = tmp_path / "n3.json"
    orphan.write_text('{"type": "summary"}\n')
    code, out, err = run_gnt("merge", str(broken), str(orphan))
    assert code == 2
    lines = err.splitlines()
    assert f"gnt merge: {broken}:{len(scans['good'].splitlines()) + 1}: not a JSON object" in lines[0]
    assert lines[1].startswith(f"gnt merge: {orphan}:1: a 'summary' object before any meta object")
    assert "Traceback" not in err
    assert "1 bad checksums: n2" in out  # what came after the damage was still merged


def test_merge_a_stream_without_result_is_a_negative_result(scans: dict[str, str]) -> None:
    meta_only = as_node(scans["good"], "n9").splitlines()[0] + "\n"
    code, out, _ = run_gnt("merge", "-", stdin=meta_only + as_node(scans["good"], "n1"))
    assert code == 1
    assert "1 no result: n9" in out


def test_merge_unreadable_file_is_one_line() -> None:
    code, _, err = run_gnt("merge", "/nonexistent/streams.json")
    assert code == 2 and err.strip() == "gnt merge: cannot read /nonexistent/streams.json: No such file or directory"


def test_merge_5000_streams(tmp_path: Path, scans: dict[str, str]) -> None:
    """The fleet-sized case the bench times (bench/bench_merge.py): every node judged, right counts."""
    body = "".join(as_node(scans["bad" if n % 250 == 0 else "good"], f"n{n}") for n in range(5000))
    path = tmp_path / "all.json"
    path.write_text(body)
    code, out, _ = run_gnt("merge", "--json", str(path))
    assert code == 1
    summary = records(out)[-1]
    assert summary["streams"] == 5000 and summary["nodes"] == 5000 and summary["bad_nodes"] == 20


def _families(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_prom_textfile_matches_the_json_of_the_same_run(tmp_path: Path, captures: dict[str, str]) -> None:
    prom = tmp_path / "gnt.prom"
    code, out, _ = run_gnt("vxlan-csum", "scan", "--json", "--pcap", captures["bad"], "--prom", str(prom))
    assert code == 1
    summary = records(out)[-1]
    metrics = _families(prom)
    by_label = {labels["checksum"]: value for labels, value in metrics["gnt_vxlan_csum_packets_total"]}
    assert by_label == {c: summary[f"checksum_{c}"] for c in ("zero", "ok", "bad", "partial")}
    assert metrics["gnt_vxlan_csum_bug_signature_total"] == [({}, summary["bug_signature"])]
    assert metrics["gnt_run_exit_code"] == [({"command": "vxlan-csum scan"}, 1.0)]
    assert metrics["gnt_run_success"] == [({"command": "vxlan-csum scan"}, 0.0)]
    text = prom.read_text()
    assert text.count("# TYPE gnt_vxlan_csum_packets_total counter") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["gnt.prom"]  # no temporary file left behind
    assert oct(prom.stat().st_mode & 0o777) == "0o644"


def test_prom_ping_loopback(tmp_path: Path) -> None:
    prom = tmp_path / "ping.prom"
    code, out, err = run_gnt("ping", "-c", "2", "-i", "0.01", "--json", "127.0.0.1", "--prom", str(prom))
    assert code == 0, err
    summary = records(out)[-1]
    metrics = _families(prom)
    assert metrics["gnt_ping_packets_sent_total"] == [({"target": "127.0.0.1"}, 2.0)]
    assert metrics["gnt_ping_packets_received_total"] == [({"target": "127.0.0.1"}, 2.0)]
    rtt = {labels["stat"]: value for labels, value in metrics["gnt_ping_rtt_seconds"]}
    assert rtt["avg"] == pytest.approx(summary["rtt"]["avg"] / 1000)


def test_prom_is_replaced_atomically(tmp_path: Path, captures: dict[str, str]) -> None:
    prom = tmp_path / "gnt.prom"
    prom.write_text("old\n")
    inode = prom.stat().st_ino
    run_gnt("vxlan-csum", "scan", "--pcap", captures["good"], "--prom", str(prom))
    assert prom.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert "gnt_run_success" in prom.read_text()


def test_prom_unwritable_is_one_line(captures: dict[str, str]) -> None:
    code, _, err = run_gnt("vxlan-csum", "scan", "--pcap", captures["good"], "--prom", "/nonexistent/dir/x.prom")
    assert code == 2
    expected = "gnt vxlan-csum: cannot write /nonexistent/dir/x.prom: No such file or directory"
    assert err.strip().splitlines()[-1] == expected


def test_npd_one_short_line_and_the_exit_code(captures: dict[str, str]) -> None:
    code, out, _ = run_gnt("--npd", "vxlan-csum", "scan", "--pcap", captures["bad"])
    assert code == 1
    assert len(out.splitlines()) == 1 and len(out.rstrip("\n")) <= 80
    assert out.startswith("vxlan-csum scan: bad checksums: 2 bad outer")
    code, out, _ = run_gnt("vxlan-csum", "scan", "--pcap", captures["good"], "--npd")
    assert code == 0 and out.startswith("vxlan-csum scan: ok")


@pytest.mark.parametrize("argv", [("ip6", "::1", "--npd"), ("ip6", "--prom", "/tmp/x.prom", "::1"),
                                  ("ping", "--prom"), ("--npd",)])
def test_fleet_options_misused_are_usage_errors(argv: tuple[str, ...]) -> None:
    code, out, err = run_gnt(*argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_npd_into_a_reader_that_went_away_is_quiet(captures: dict[str, str]) -> None:
    done = subprocess.run(["sh", "-c", '"$@" | true', "sh", sys.executable, "-m", "gnt", "--npd", "vxlan-csum", "scan",
                           "--pcap", captures["bad"]], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
