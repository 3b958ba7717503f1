"""Strict parser for the EPANET 2 .inp sections a process graph needs.

Why not wntr (the well-kept EPANET reader on PyPI): it pulls scipy, networkx and matplotlib into a
trainer that needs none of them, it simulates hydraulics we do not run, and its errors name no
file:line. The graph needs only the topology and the level controls, a few hundred lines of a
plain text format, so this module reads exactly those sections and refuses anything it does not
understand in them, naming file:line and the offending text:

| section      | fields used (EPANET 2 manual, "Input File Format")                          |
|--------------|------------------------------------------------------------------------------|
| [JUNCTIONS]  | ID Elev [Demand] [Pattern]                                                   |
| [RESERVOIRS] | ID Head [Pattern]                                                            |
| [TANKS]      | ID Elev InitLevel MinLevel MaxLevel Diameter MinVol [VolCurve] [Overflow]    |
| [PIPES]      | ID Node1 Node2 Length Diameter Roughness [MinorLoss] [Open/Closed/CV]        |
| [PUMPS]      | ID Node1 Node2 then keyword-value pairs (HEAD curve, POWER kw, SPEED, PATTERN) |
| [VALVES]     | ID Node1 Node2 Diameter Type(PRV PSV PBV FCV TCV GPV) Setting [MinorLoss]    |
| [CONTROLS]   | LINK id status IF NODE id ABOVE/BELOW value; LINK id status AT [CLOCK]TIME t |
| [RULES]      | RULE id / IF, AND, OR conditions / THEN, ELSE, AND actions / PRIORITY p      |

Other sections are skipped. `;` starts a comment; section names and keywords are case-insensitive,
IDs are kept as written. Every link must join two defined nodes and every control or rule must
name defined elements. A status is OPEN, CLOSED or a numeric setting. From [RULES] we keep what
ties links to tank levels: for each rule, the tanks whose LEVEL (or HEAD) its conditions test
and the links its actions set (`rule_links`). The file is small (C-Town: 1649 lines), so it is
parsed line by line; the data readers are the vectorised ones.
"""

import dataclasses
from pathlib import Path

from kdgat.common.errors import DataError
from kdgat.data.text.scan import read_bytes

VALVE_TYPES = ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV")
PUMP_KEYWORDS = ("HEAD", "POWER", "SPEED", "PATTERN")
RELATIONS = ("BELOW", "ABOVE", "<", "<=", ">", ">=", "=", "<>", "IS", "NOT")  # of [RULES] conditions
PIPE_STATUS = ("OPEN", "CLOSED", "CV")


@dataclasses.dataclass
class Network:
    """Topology and level controls of an EPANET network.

    pipes/pumps: (id, node1, node2); valves: (id, node1, node2, type); controls: (link, status,
    node, "BELOW"/"ABOVE", level) for [CONTROLS] lines that test a node; timed_controls: (link,
    status, "TIME"/"CLOCKTIME", when); rule_links: (rule id, tanks tested, links set);
    lines: 1-based line where each element is defined (for messages)."""

    source: Path
    junctions: tuple[str, ...]
    reservoirs: tuple[str, ...]
    tanks: tuple[str, ...]
    pipes: tuple[tuple[str, str, str], ...]
    pumps: tuple[tuple[str, str, str], ...]
    valves: tuple[tuple[str, str, str, str], ...]
    controls: tuple[tuple[str, str, str, str, float], ...]
    timed_controls: tuple[tuple[str, str, str, str], ...] = ()
    rule_links: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    lines: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.junctions + self.reservoirs + self.tanks

    @property
    def links(self) -> tuple[tuple[str, str, str], ...]:
        """(id, node1, node2) of every pipe, pump and valve."""
        return self.pipes + self.pumps + tuple(v[:3] for v in self.valves)


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.nodes: dict[str, list[str]] = {"JUNCTIONS": [], "RESERVOIRS": [], "TANKS": []}
        # (line, (id, node1, node2[, valve type])) per link
        self.links: dict[str, list[tuple[int, tuple[str, ...]]]] = {"PIPES": [], "PUMPS": [], "VALVES": []}
        self.controls: list[tuple[int, tuple[str, str, str, str, float]]] = []
        self.timed: list[tuple[int, tuple[str, str, str, str]]] = []
        self.rules: list[tuple[int, str, list[tuple[int, str, str]], list[tuple[int, str]]]] = []
        self.defined: dict[str, tuple[str, int]] = {}  # id -> (kind "node"/"link", line)

    def fail(self, line: int, text: str, what: str) -> DataError:
        return DataError(f"{self.path}:{line}: {text.strip()[:120]!r}: {what}.")

    def number(self, line: int, text: str, token: str, what: str) -> float:
        try:
            return float(token)
        except ValueError:
            raise self.fail(line, text, f"{what} {token!r} is not a number") from None

    def define(self, line: int, text: str, ident: str, kind: str) -> None:
        if ident in self.defined:
            raise self.fail(line, text, f"ID {ident!r} is already defined on line {self.defined[ident][1]}")
        self.defined[ident] = (kind, line)

    def row(self, section: str, line: int, text: str, tokens: list[str]) -> None:
        if section in self.nodes:
            self.node_row(section, line, text, tokens)
        elif section == "PIPES":
            self.pipe_row(line, text, tokens)
        elif section == "PUMPS":
            self.pump_row(line, text, tokens)
        elif section == "VALVES":
            self.valve_row(line, text, tokens)
        elif section == "CONTROLS":
            self.control(line, text, tokens)

    def node_row(self, section: str, line: int, text: str, tokens: list[str]) -> None:
        need = {"JUNCTIONS": 2, "RESERVOIRS": 2, "TANKS": 7}[section]
        if len(tokens) < need:
            raise self.fail(line, text, f"a [{section}] row needs at least {need} fields")
        for token in tokens[1:need]:
            self.number(line, text, token, "value")
        self.define(line, text, tokens[0], "node")
        self.nodes[section].append(tokens[0])

    def pipe_row(self, line: int, text: str, tokens: list[str]) -> None:
        if len(tokens) < 6:
            raise self.fail(line, text, "a [PIPES] row needs ID Node1 Node2 Length Diameter Roughness")
        for token in tokens[3:6]:
            self.number(line, text, token, "value")
        minor, status = tokens[6:7], tokens[7:8]
        if minor and minor[0].upper() in PIPE_STATUS and not status:
            minor, status = [], minor  # EPANET also takes the status without a minor loss
        for token in minor:
            self.number(line, text, token, "minor loss")
        if status and status[0].upper() not in PIPE_STATUS:
            raise self.fail(line, text, f"pipe status {status[0]!r} is not Open, Closed or CV")
        self.link("PIPES", line, text, tokens[:3])

    def pump_row(self, line: int, text: str, tokens: list[str]) -> None:
        keys = tokens[3::2]
        if len(tokens) < 5 or len(tokens) % 2 == 0 or any(k.upper() not in PUMP_KEYWORDS for k in keys):
            raise self.fail(
                line, text, "a [PUMPS] row needs ID Node1 Node2 and HEAD/POWER/SPEED/PATTERN pairs"
            )
        self.link("PUMPS", line, text, tokens[:3])

    def valve_row(self, line: int, text: str, tokens: list[str]) -> None:
        if len(tokens) < 6:
            raise self.fail(line, text, "a [VALVES] row needs ID Node1 Node2 Diameter Type Setting")
        if tokens[4].upper() not in VALVE_TYPES:
            raise self.fail(line, text, f"valve type {tokens[4]!r} is not one of {', '.join(VALVE_TYPES)}")
        self.link("VALVES", line, text, (*tokens[:3], tokens[4].upper()))

    def link(self, section: str, line: int, text: str, fields: tuple[str, ...] | list[str]) -> None:
        if fields[1] == fields[2]:
            raise self.fail(line, text, f"link {fields[0]!r} joins node {fields[1]!r} to itself")
        self.define(line, text, fields[0], "link")
        self.links[section].append((line, tuple(fields)))

    def status(self, line: int, text: str, token: str) -> str:
        if token.upper() in ("OPEN", "CLOSED"):
            return token.upper()
        self.number(line, text, token, "status")
        return token

    def control(self, line: int, text: str, tokens: list[str]) -> None:
        words = [t.upper() for t in tokens]
        if len(words) >= 8 and words[0] == "LINK" and words[3] == "IF" and words[4] == "NODE":
            if words[6] not in ("ABOVE", "BELOW"):
                raise self.fail(line, text, f"{tokens[6]!r} is not ABOVE or BELOW")
            level = self.number(line, text, tokens[7], "level")
            entry = (tokens[1], self.status(line, text, tokens[2]), tokens[5], words[6], level)
            self.controls.append((line, entry))
        elif (
            len(words) >= 6 and words[0] == "LINK" and words[3] == "AT" and words[4] in ("TIME", "CLOCKTIME")
        ):
            when = " ".join(tokens[5:])
            self.timed.append((line, (tokens[1], self.status(line, text, tokens[2]), words[4], when)))
        else:
            raise self.fail(
                line,
                text,
                "expected `LINK id status IF NODE id ABOVE|BELOW value` or `LINK id status AT TIME t`",
            )

    def rule_line(self, line: int, text: str, tokens: list[str]) -> None:
        head = tokens[0].upper()
        if head == "RULE":
            if len(tokens) != 2:
                raise self.fail(line, text, "expected `RULE id`")
            self.rules.append((line, tokens[1], [], []))
            return
        if not self.rules:
            raise self.fail(line, text, "a [RULES] clause before any `RULE id`")
        _, _, conditions, actions = self.rules[-1]
        words = [t.upper() for t in tokens]
        if head in ("IF", "OR") or (head == "AND" and not actions):
            # object id attribute relation value (SYSTEM has no id)
            if len(words) >= 5 and words[1] != "SYSTEM":
                if words[4] not in RELATIONS:
                    raise self.fail(line, text, f"{tokens[4]!r} is not a relation")
                conditions.append((line, words[1], tokens[2] if words[3] in ("LEVEL", "HEAD") else ""))
            elif not (len(words) >= 4 and words[1] == "SYSTEM"):
                raise self.fail(line, text, "expected `IF|AND|OR object id attribute relation value`")
        elif head in ("THEN", "ELSE", "AND"):
            if len(words) < 6 or words[4] != "IS" or words[1] not in ("LINK", "PIPE", "PUMP", "VALVE"):
                raise self.fail(
                    line, text, "expected `THEN|ELSE|AND LINK|PIPE|PUMP|VALVE id STATUS|SETTING IS value`"
                )
            actions.append((line, tokens[2]))
        elif head == "PRIORITY":
            if len(tokens) != 2:
                raise self.fail(line, text, "expected `PRIORITY value`")
            self.number(line, text, tokens[1], "priority")
        else:
            raise self.fail(line, text, "expected RULE, IF, AND, OR, THEN, ELSE or PRIORITY")

    def check_refs(self, network_lines: list[str]) -> None:
        """Links join defined nodes; controls and rules name defined elements of the right kind."""
        for section, rows in self.links.items():
            for line, (ident, *ends) in rows:
                for node in ends[:2]:
                    if self.defined.get(node, ("", 0))[0] != "node":
                        raise self.fail(
                            line,
                            network_lines[line - 1],
                            f"{section[:-1].lower()} {ident!r}: "
                            f"no junction, reservoir or tank {node!r} is defined",
                        )
        for line, (link, _, node, _, _) in self.controls:
            self.expect(line, network_lines, link, "link")
            self.expect(line, network_lines, node, "node")
        for line, (link, _, _, _) in self.timed:
            self.expect(line, network_lines, link, "link")
        tanks = set(self.nodes["TANKS"])
        for _, _, conditions, actions in self.rules:
            for line, kind, ident in conditions:
                if ident and kind in ("TANK", "NODE"):
                    self.expect(line, network_lines, ident, "node")
                    if kind == "TANK" and ident not in tanks:
                        raise self.fail(line, network_lines[line - 1], f"{ident!r} is not a tank")
            for line, ident in actions:
                self.expect(line, network_lines, ident, "link")

    def expect(self, line: int, lines: list[str], ident: str, kind: str) -> None:
        if self.defined.get(ident, ("", 0))[0] != kind:
            raise self.fail(line, lines[line - 1], f"no {kind} {ident!r} is defined in this file")


def read_network(path: Path) -> Network:
    """Parse an EPANET 2 .inp file (gzip or plain) into its topology and level controls."""
    path = Path(path)
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    parser = _Parser(path)
    section = ""
    sections_seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        body = line.split(";", 1)[0].strip()
        if not body:
            continue
        if body.startswith("["):
            if not body.endswith("]"):
                raise parser.fail(number, line, "a section header must look like [NAME]")
            section = body[1:-1].strip().upper()
            sections_seen.add(section)
            continue
        if not section:
            raise parser.fail(number, line, "text before the first [SECTION] header")
        tokens = body.split()
        if section == "RULES":
            parser.rule_line(number, line, tokens)
        else:
            parser.row(section, number, line, tokens)
    missing = [s for s in ("JUNCTIONS", "PIPES") if s not in sections_seen]
    if missing:
        raise DataError(
            f"{path}: no [{'] ['.join(missing)}] section; this does not look like an EPANET 2 .inp file."
        )
    parser.check_refs(lines)
    tanks = set(parser.nodes["TANKS"])
    rule_links = []
    for _, ident, conditions, actions in parser.rules:
        tested = tuple(
            dict.fromkeys(i for _, kind, i in conditions if i in tanks and kind in ("TANK", "NODE"))
        )
        rule_links.append((ident, tested, tuple(dict.fromkeys(i for _, i in actions))))
    return Network(
        source=path,
        junctions=tuple(parser.nodes["JUNCTIONS"]),
        reservoirs=tuple(parser.nodes["RESERVOIRS"]),
        tanks=tuple(parser.nodes["TANKS"]),
        pipes=tuple((r[0], r[1], r[2]) for _, r in parser.links["PIPES"]),
        pumps=tuple((r[0], r[1], r[2]) for _, r in parser.links["PUMPS"]),
        valves=tuple((r[0], r[1], r[2], r[3]) for _, r in parser.links["VALVES"]),
        controls=tuple(entry for _, entry in parser.controls),
        timed_controls=tuple(entry for _, entry in parser.timed),
        rule_links=tuple(rule_links),
        lines={ident: line for ident, (_, line) in parser.defined.items()},
    )
