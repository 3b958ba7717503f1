"""The EPANET .inp parser: C-Town's counts and examples (SOURCE.md), a tiny hand-made network,
and bad input (DataError naming file:line)."""

import gzip
from pathlib import Path

import pytest

from kdgat.common.errors import DataError
from kdgat.data.watertreatment.epanet import read_network
from tests.helpers import shared_data

TINY_INP = """\
[TITLE]
tiny test network

[JUNCTIONS]
;ID   Elev  Demand  Pattern
 JA    10    0              ;pump suction
 JB    10    0
 JC    10    1
 JD    10    1
 JE    10    0
 JF    10    0

[RESERVOIRS]
 R1    50

[TANKS]
;ID  Elev InitLvl MinLvl MaxLvl Diam MinVol
 T1   20   2       0      5      10   0

[PIPES]
 P1   R1   JA   10   100   100
 P2   JB   JC   10   100   100   0   Open
 P3   JC   T1   10   100   100
 P4   JC   JD   10   100   100
 P5   T1   JE   10   100   100   0   CV
 P6   JB   JE   10   100   100   Closed

[PUMPS]
 PU1  JA   JB   HEAD C1

[VALVES]
 V1   JD   JE   100  PRV  30
 V2   JE   JF   100  TCV  0    0

[CURVES]
 C1   10   20

[CONTROLS]
LINK PU1 OPEN IF NODE T1 BELOW 1
LINK PU1 CLOSED IF NODE T1 ABOVE 4
LINK V1 0.5 AT TIME 6:00

[RULES]
RULE R1
IF TANK T1 LEVEL ABOVE 4.5
AND SYSTEM CLOCKTIME >= 8 AM
THEN VALVE V2 STATUS IS CLOSED
ELSE VALVE V2 STATUS IS OPEN
PRIORITY 1

[END]
"""


def tiny(tmp_path: Path, text: str = TINY_INP, name: str = "tiny.inp") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.real_data
def test_c_town_counts_and_examples() -> None:
    net = read_network(shared_data("watertreatment_batadal") / "c-town.inp.gz")
    assert (len(net.junctions), len(net.reservoirs), len(net.tanks)) == (388, 1, 7)
    assert (len(net.pipes), len(net.pumps), len(net.valves)) == (429, 11, 4)
    assert net.reservoirs == ("R1",) and net.tanks == tuple(f"T{k}" for k in range(1, 8))
    assert [p[0] for p in net.pumps] == [f"PU{k}" for k in range(1, 12)]
    assert ("PU2", "J280", "J269") in net.pumps
    assert ("V2", "J14", "J422", "TCV") in net.valves
    assert sorted(v[3] for v in net.valves) == ["PRV", "PRV", "PRV", "TCV"]
    assert ("PU1", "OPEN", "T1", "BELOW", 4.0) in net.controls
    assert ("PU1", "CLOSED", "T1", "ABOVE", 6.3) in net.controls
    assert ("V2", "OPEN", "T2", "BELOW", 0.5) in net.controls
    assert len(net.controls) == 20 and net.timed_controls == () and net.rule_links == ()
    assert net.lines["PU2"] == 844 and net.lines["J511"] == 6


def test_tiny_network(tmp_path: Path) -> None:
    path = tiny(tmp_path)
    gz = tmp_path / "tiny.inp.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    for source in (path, gz):
        net = read_network(source)
        assert net.junctions == ("JA", "JB", "JC", "JD", "JE", "JF")
        assert net.nodes == (*net.junctions, "R1", "T1")
        assert net.pipes[4] == ("P5", "T1", "JE") and len(net.pipes) == 6
        assert net.pumps == (("PU1", "JA", "JB"),)
        assert net.valves == (("V1", "JD", "JE", "PRV"), ("V2", "JE", "JF", "TCV"))
        assert net.controls == (("PU1", "OPEN", "T1", "BELOW", 1.0), ("PU1", "CLOSED", "T1", "ABOVE", 4.0))
        assert net.timed_controls == (("V1", "0.5", "TIME", "6:00"),)
        assert net.rule_links == (("R1", ("T1",), ("V2",)),)
        assert net.source == source


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (" P4   JC   JD", " P4   JC   JX", "no junction, reservoir or tank 'JX'"),
        (" JF    10    0", " JE    10    0", "already defined on line 10"),
        (" T1   20   2", " T1   20   two", "'two' is not a number"),
        (" P3   JC   T1   10   100   100", " P3   JC   T1   10   100", "needs ID Node1 Node2"),
        ("TCV  0    0", "XYZ  0    0", "valve type 'XYZ'"),
        ("NODE T1 BELOW 1", "NODE T1 UNDER 1", "'UNDER' is not ABOVE or BELOW"),
        ("LINK PU1 CLOSED IF NODE T1", "LINK PU9 CLOSED IF NODE T1", "no link 'PU9'"),
        ("IF NODE T1 BELOW 1", "WHEN NODE T1 BELOW 1", "expected `LINK id status IF NODE"),
        ("THEN VALVE V2 STATUS IS CLOSED", "THEN VALVE V2 STATUS CLOSED", "expected `THEN|ELSE|AND"),
        ("IF TANK T1 LEVEL", "IF TANK JA LEVEL", "'JA' is not a tank"),
        ("PRIORITY 1", "PRIO 1", "expected RULE, IF"),
        (" PU1  JA   JB   HEAD C1", " PU1  JA   JB   FLOW C1", "HEAD/POWER/SPEED/PATTERN"),
        (" P1   R1   JA", " P1   JA   JA", "joins node 'JA' to itself"),
        ("10   100   100   0   Open", "10   100   100   0   Shut", "pipe status 'Shut'"),
        ("10   100   100   0   Open", "10   100   100   x   Open", "minor loss 'x' is not a number"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, old: str, new: str, needle: str) -> None:
    assert old in TINY_INP
    text = TINY_INP.replace(old, new, 1)
    line = max(k for k, row in enumerate(text.splitlines(), start=1) if new in row)
    path = tiny(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_network(path)
    message = str(err.value)
    assert f"{path}:{line}:" in message and needle in message, message


def test_not_an_inp_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no \\[JUNCTIONS\\] \\[PIPES\\] section"):
        read_network(tiny(tmp_path, "[TITLE]\nnothing here\n"))
    with pytest.raises(DataError, match=r":1: .*before the first"):
        read_network(tiny(tmp_path, "DATETIME,L_T1\n", name="csv.inp"))
