"""assess: classify every source object, rate its complexity, order by dependencies."""

from __future__ import annotations

import logging
import re
from typing import Any

from langgraph.runtime import Runtime

from datamigrate_agent.metadata import MetadataDocument, Routine, Table, View
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._names import object_key
from datamigrate_agent.state import ObjectInfo, State

__all__ = ["assess_objects", "dependency_order"]

log = logging.getLogger(__name__)

_HARD = re.compile(
    r"\b(cursor|pivot|unpivot|apply|openquery|openrowset|exec|sp_executesql|while|xml|"
    r"merge|#\w+)\b",
    re.IGNORECASE,
)
_MEDIUM = re.compile(r"\b(join|union|group\s+by|case|over|exists|in\s*\()", re.IGNORECASE)
_NAME_REF = re.compile(r'(?:\[([^\]]+)\]|"([^"]+)"|\b([A-Za-z_][\w$#@]*))')


def _refs_by_name(definition: str, known: dict[str, str]) -> list[str]:
    # A fallback when extract recorded no dependencies: every known object named in the text.
    found = []
    for m in _NAME_REF.finditer(definition):
        name = (m.group(1) or m.group(2) or m.group(3)).lower()
        key = known.get(name)
        if key and key not in found:
            found.append(key)
    return found


def _deps(obj: View | Routine, keys: set[str], by_name: dict[str, str]) -> list[str]:
    me = object_key(obj.schema_, obj.name)
    listed = [d.lower() for d in obj.dependencies if d.lower() in keys]
    if not listed:
        listed = _refs_by_name(obj.definition, by_name)
    return [d for d in listed if d != me]


def _complexity(text: str) -> tuple[str, list[str]]:
    hard = sorted({m.group(0).lower() for m in _HARD.finditer(text)})
    if hard:
        return "high", [f"uses {', '.join(hard)}"]
    medium = len(_MEDIUM.findall(text))
    if medium > 3 or len(text) > 2000:
        return "medium", [f"{medium} joins/unions/groupings, {len(text)} characters"]
    return "low", []


def _table_info(t: Table, keys: set[str]) -> dict[str, Any]:
    me = object_key(t.schema_, t.name)
    deps = [object_key(fk.ref_schema, fk.ref_table) for fk in t.foreign_keys]
    deps = sorted({d for d in deps if d in keys and d != me})
    level = "low" if len(t.columns) <= 30 else "medium"
    return {"kind": "table", "depends_on": deps, "complexity": level, "notes": []}


def _collect(doc: MetadataDocument) -> list[ObjectInfo]:
    objs: list[Table | View | Routine] = [*doc.tables, *doc.views, *doc.procedures, *doc.functions]
    keys = {object_key(o.schema_, o.name) for o in objs}
    by_name = {o.name.lower(): object_key(o.schema_, o.name) for o in objs}
    by_name.update({object_key(o.schema_, o.name): object_key(o.schema_, o.name) for o in objs})
    out: list[ObjectInfo] = []
    for o in objs:
        if isinstance(o, Table):
            info = _table_info(o, keys)
        else:
            level, notes = _complexity(o.definition)
            kind = "view" if isinstance(o, View) else (
                "procedure" if o.kind == "procedure" else "function")  # fmt: skip
            info = {"kind": kind, "depends_on": _deps(o, keys, by_name),
                    "complexity": level, "notes": notes}  # fmt: skip
        out.append(ObjectInfo(key=object_key(o.schema_, o.name), name=o.qualified_name,
                              order=0, **info))  # fmt: skip
    return out


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    # Tarjan's algorithm, iterative so a long dependency chain cannot hit the recursion limit.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            children = graph.get(node, [])
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def dependency_order(graph: dict[str, list[str]]) -> tuple[list[str], list[list[str]]]:
    """Keys in topological order (Kahn, ties by name) and the cycles; cycle members go last."""
    cycles = _strongly_connected(graph)
    on_cycle = {k for c in cycles for k in c}
    remaining = {k: {d for d in deps if d in graph} for k, deps in graph.items()}
    order: list[str] = []
    ready = sorted(k for k, deps in remaining.items() if not deps)
    while ready:
        key = ready.pop(0)
        order.append(key)
        for other, deps in remaining.items():
            if key in deps:
                deps.discard(key)
                if not deps and other not in order and other not in ready:
                    ready.append(other)
        ready.sort()
    rest = sorted(k for k in graph if k not in order)
    return order + rest, [c for c in cycles if set(c) <= on_cycle]


def assess_objects(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Classify objects, rate complexity, and put them in dependency order."""
    ctx = runtime.context
    ctx.executed.append("assess")
    objects = _collect(ctx.metadata)
    # Foreign keys order tables but never make a cycle worth flagging: staging models do not
    # read each other. Only view/routine edges become ref() edges.
    model_edges = {o["key"]: ([] if o["kind"] == "table" else o["depends_on"]) for o in objects}
    order, cycles = dependency_order(model_edges)
    position = {k: i for i, k in enumerate(order)}
    on_cycle = {k: c for c in cycles for k in c}
    for o in objects:
        o["order"] = position[o["key"]]
        if o["key"] in on_cycle:
            o["notes"].append("on a dependency cycle: " + " -> ".join(on_cycle[o["key"]]))
    objects.sort(key=lambda o: o["order"])
    # The first report: before the objects are counted, there is no total to tell.
    ctx.progress.update(phase="Generating", total=len(objects), current=None)
    log.info("Assessed objects", extra={"fields": {"node": "assess", "objects": len(objects),
                                                   "cycles": len(cycles)}})  # fmt: skip
    return {"objects": objects, "cycles": cycles}
