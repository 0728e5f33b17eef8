"""An agreement network answer in each of its formats: JSON, CSV, GraphML, GEXF.

Every format carries the same numbers (the tests read each back and compare).
JSON and CSV are written here directly (JSON through orjson: a year of weekly
windows over hundreds of actors is hundreds of thousands of edges). GraphML is
networkx's writer, one graph per window. GEXF is written by hand: one dynamic
graph with the windows as spells, shaped around two traps of networkx's reader
(it forces an attribute whose id is ``weight`` to be static, so the dynamic weight
has the id ``w`` and the title ``weight``; it cannot read ``timeformat="dateTime"``,
so times are ``double``: Unix seconds, UTC).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from xml.etree import ElementTree as ET

import networkx as nx
import orjson

from stanceline.domain.network import WindowNetwork
from stanceline.store.network_rows import Node

NetworkFormat = Literal["json", "csv", "graphml", "gexf"]
MEDIA_TYPES: dict[NetworkFormat, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "graphml": "application/graphml+xml",
    "gexf": "application/gexf+xml",
}


@dataclass(frozen=True, slots=True)
class Answer:
    nodes: list[Node]
    windows: list[WindowNetwork]
    query: dict[str, Any]
    """The parameters as they were understood (JSON only)."""


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_json(answer: Answer) -> bytes:
    nodes = [{"id": n.id, "name": n.name, "kind": n.kind} for n in answer.nodes]
    windows = [
        {
            "start": _utc(w.window.start),
            "stop": _utc(w.window.stop),
            "middle": _utc(w.window.middle),
            "statements": w.statements,
            "polarization": w.polarization,
            "nodes": nodes,
            # orjson writes a dataclass as an object of its fields, in order: no dict per edge.
            "edges": w.edges,
        }
        for w in answer.windows
    ]
    return orjson.dumps({**answer.query, "windows": windows})


CSV_COLUMNS = (
    "window_start",
    "window_stop",
    "window_middle",
    "source",
    "source_name",
    "source_kind",
    "target",
    "target_name",
    "target_kind",
    "congruence",
    "conflict",
    "weight",
)


def _cell(value: object) -> object:
    return "" if value is None else repr(value) if isinstance(value, float) else value


def as_csv(answer: Answer) -> bytes:
    """One edge per line, with its window's bounds and both nodes' names and kinds."""
    by_id = {n.id: n for n in answer.nodes}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for w in answer.windows:
        bounds = (_utc(w.window.start), _utc(w.window.stop), _utc(w.window.middle))
        for e in w.edges:
            a, b = by_id[e.source], by_id[e.target]
            numbers = (e.congruence, e.conflict, e.weight)
            writer.writerow(
                [*bounds, a.id, a.name, a.kind or "", b.id, b.name, b.kind or ""]
                + [_cell(x) for x in numbers]
            )
    return buffer.getvalue().encode()


def _graph(nodes: Sequence[Node], w: WindowNetwork) -> nx.Graph[str]:
    graph: nx.Graph[str] = nx.Graph(
        id=_utc(w.window.start),
        start=_utc(w.window.start),
        stop=_utc(w.window.stop),
        middle=_utc(w.window.middle),
        statements=w.statements,
    )
    if w.polarization is not None:
        graph.graph["polarization"] = w.polarization
    for n in nodes:
        # ``label``: what Gephi shows a node as; ``name`` as the JSON has it.
        kind = {"kind": n.kind} if n.kind else {}
        graph.add_node(n.id, label=n.name, name=n.name, **kind)
    for e in w.edges:
        weight = {} if e.weight is None else {"weight": e.weight}
        graph.add_edge(e.source, e.target, congruence=e.congruence, conflict=e.conflict, **weight)
    return graph


def as_graphml(answer: Answer) -> bytes:
    """Standard GraphML with typed keys, one ``<graph>`` per window in time order."""
    writer = nx.readwrite.graphml.GraphMLWriter(encoding="utf-8")
    writer.add_graphs([_graph(answer.nodes, w) for w in answer.windows])
    return str(writer).encode()


_GEXF = "http://gexf.net/1.3"
_EDGE_ATTRIBUTES = (("congruence", "congruence"), ("conflict", "conflict"), ("w", "weight"))


def _seconds(moment: datetime) -> str:
    return repr(moment.timestamp())


def as_gexf(answer: Answer) -> bytes:
    """One dynamic graph; each edge lives in the windows that list it, its numbers as
    attribute values over each window's spell. Every node spans every window."""
    root = ET.Element("gexf", {"xmlns": _GEXF, "version": "1.3"})
    graph = ET.SubElement(
        root,
        "graph",
        {"mode": "dynamic", "defaultedgetype": "undirected", "timeformat": "double"},
    )
    node_attrs = ET.SubElement(graph, "attributes", {"class": "node", "mode": "static"})
    ET.SubElement(node_attrs, "attribute", {"id": "kind", "title": "kind", "type": "string"})
    edge_attrs = ET.SubElement(graph, "attributes", {"class": "edge", "mode": "dynamic"})
    for ident, title in _EDGE_ATTRIBUTES:
        ET.SubElement(edge_attrs, "attribute", {"id": ident, "title": title, "type": "double"})
    spans = [(_seconds(w.window.start), _seconds(w.window.stop)) for w in answer.windows]
    nodes = ET.SubElement(graph, "nodes")
    for n in answer.nodes:
        node = ET.SubElement(nodes, "node", {"id": n.id, "label": n.name})
        if n.kind:
            values = ET.SubElement(node, "attvalues")
            ET.SubElement(values, "attvalue", {"for": "kind", "value": n.kind})
        _spells(node, spans)
    listed: dict[tuple[str, str], list[tuple[tuple[str, str], tuple[float, ...]]]] = {}
    for span, w in zip(spans, answer.windows, strict=True):
        for e in w.edges:
            numbers = (e.congruence, e.conflict) + (() if e.weight is None else (e.weight,))
            listed.setdefault((e.source, e.target), []).append((span, numbers))
    edges = ET.SubElement(graph, "edges")
    for number, ((source, target), lives) in enumerate(sorted(listed.items())):
        edge = ET.SubElement(edges, "edge", {"id": str(number), "source": source, "target": target})
        values = ET.SubElement(edge, "attvalues")
        for (start, end), numbers in lives:
            for (ident, _), value in zip(_EDGE_ATTRIBUTES, numbers, strict=False):
                attributes = {"for": ident, "value": repr(value), "start": start, "end": end}
                ET.SubElement(values, "attvalue", attributes)
        _spells(edge, [span for span, _ in lives])
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _spells(parent: ET.Element, spans: Sequence[tuple[str, str]]) -> None:
    spells = ET.SubElement(parent, "spells")
    for start, end in spans:
        ET.SubElement(spells, "spell", {"start": start, "end": end})


RENDER = {"json": as_json, "csv": as_csv, "graphml": as_graphml, "gexf": as_gexf}
