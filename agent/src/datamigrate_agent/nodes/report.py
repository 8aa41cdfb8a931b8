"""report: ``results.json`` for machines, ``report.md`` (with a Mermaid lineage) for people."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from datamigrate_agent.metadata import utc_now
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._engine import save_engine
from datamigrate_agent.progress import summary_of
from datamigrate_agent.state import State

__all__ = ["write_report", "results_document", "mermaid_lineage"]

log = logging.getLogger(__name__)

RESULTS_VERSION = "datamigrate.ai/results/v1"


def results_document(state: State, ctx: Context) -> dict[str, Any]:
    """The machine-readable results: one entry per source object, in dependency order."""
    plan, outcomes = state["plan"], state.get("outcomes", {})
    objects = []
    for o in state["objects"]:
        out, pm = outcomes.get(o["key"], {}), plan.get(o["key"])
        objects.append({
            "object": o["name"], "kind": o["kind"], "complexity": o["complexity"],
            "model": pm["model"] if pm else None, "layer": pm["layer"] if pm else None,
            "path": pm["path"] if pm else None, "refs": pm["refs"] if pm else [],
            "status": out.get("status", "flagged"), "reason": out.get("reason"),
            "attempts": out.get("attempts", 0), "fixes": out.get("fixes", []),
            "checks": out.get("checks", {}), "notes": o["notes"],
        })  # fmt: skip
    cfg = ctx.config
    counts: dict[str, int] = {}
    for e in objects:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    build = state.get("build", {})
    return {
        "version": RESULTS_VERSION, "migration": cfg.thread_id, "project": cfg.project_name,
        "target": cfg.target, "source": ctx.metadata.source.model_dump(by_alias=True),
        "generatedAt": utc_now(), "counts": counts, "cycles": state.get("cycles", []),
        "build": {"rounds": build.get("round", 0), "seconds": build.get("seconds", {}),
                  "parseError": build.get("parse_error")},
        "extractProblems": len(ctx.metadata.problems), "objects": objects,
    }  # fmt: skip


def _label(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


#: Past this many models the diagram leaves out staging models nothing else reads.
MAX_DIAGRAM_MODELS = 200


def _drawn(plan: dict[str, Any]) -> dict[str, Any]:
    if len(plan) <= MAX_DIAGRAM_MODELS:
        return plan
    read = {r for pm in plan.values() for r in pm["refs"]}
    return {k: pm for k, pm in plan.items() if pm["layer"] != "staging" or pm["model"] in read}


def mermaid_lineage(state: State) -> str:
    """A Mermaid flowchart: sources -> staging -> intermediate -> marts, flagged in red."""
    plan, outcomes = _drawn(state["plan"]), state.get("outcomes", {})
    lines = ["flowchart LR"]
    if len(plan) < len(state["plan"]):
        lines.append(
            f"    %% {len(state['plan']) - len(plan)} staging models no model reads "
            "are left out; results.json lists every model"
        )
    for key, pm in plan.items():
        name = next((o["name"] for o in state["objects"] if o["key"] == key), key)
        lines.append(f'    {pm["model"]}["{_label(pm["model"])}<br/><i>{_label(name)}</i>"]')
        status = outcomes.get(key, {}).get("status", "")
        css = "flagged" if status in {"flagged", "failed"} else pm["layer"]
        lines.append(f"    class {pm['model']} {css}")
        for src in pm["sources"]:
            node = "src_" + src.replace(".", "__")
            lines.append(f'    {node}[("{_label(src)}")] --> {pm["model"]}')
        for ref in pm["refs"]:
            lines.append(f"    {ref} --> {pm['model']}")
    lines += [
        "    classDef staging fill:#e3f2fd,stroke:#1565c0",
        "    classDef intermediate fill:#fff8e1,stroke:#f9a825",
        "    classDef marts fill:#e8f5e9,stroke:#2e7d32",
        "    classDef flagged fill:#ffebee,stroke:#c62828",
    ]
    return "\n".join(lines)


def _cell(text: Any) -> str:
    return " ".join(str(text if text is not None else "").split()).replace("|", "\\|")


def _markdown(doc: dict[str, Any], state: State, project: Path) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(doc["counts"].items()))
    out = [
        f"# Migration report: {doc['project']}", "",
        f"Source: {doc['source']['kind']} `{doc['source']['name']}`"
        f" ({doc['source'].get('database') or 'database unnamed'}); target: `{doc['target']}`;"
        f" generated {doc['generatedAt']}.", "",
        f"**{len(doc['objects'])} objects: {counts}.** dbt rounds: {doc['build']['rounds']}.", "",
        "Statuses: `verified` = rows and column checksums match the source; "
        "`verified-by-build` = builds and passes its tests, but the original could not be run "
        "to compare; `flagged` = needs a person, see the reason.", "",
        "## Lineage", "", "```mermaid", mermaid_lineage(state), "```", "",
        "## Objects", "", "| object | kind | model | status | reason | repairs |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for e in doc["objects"]:
        fixes = ", ".join(e["fixes"]) or ("-" if not e["attempts"] else f"{e['attempts']}")
        out.append(f"| {_cell(e['object'])} | {e['kind']} | {_cell(e['model'] or '-')} | "
                   f"{e['status']} | {_cell(e['reason'])} | {_cell(fixes)} |")  # fmt: skip
    out += _drafts(doc["objects"], project)
    if doc["cycles"]:
        out += ["", "## Dependency cycles", ""]
        out += [f"- {' -> '.join(c)}" for c in doc["cycles"]]
    return "\n".join(out) + "\n"


DISABLED = "{{ config(enabled=false) }}"


def _disabled(project: Path, path: str | None) -> bool:
    if path is None or not (project / path).is_file():
        return False
    with (project / path).open(encoding="utf-8") as f:
        return f.readline().strip() == DISABLED


def _drafts(objects: list[dict[str, Any]], project: Path) -> list[str]:
    # A model flagged before the build is in the project, disabled, with the reason on top.
    flagged = [e for e in objects if e["status"] == "flagged" and _disabled(project, e["path"])]
    if not flagged:
        return []
    out = ["", "## Flagged models to finish by hand", "",
           "Each file is in the project, disabled (`{{ config(enabled=false) }}`), with the "
           "reason on top; the rest of the project builds without it.", ""]  # fmt: skip
    out += [f"- `{e['path']}` ({_cell(e['object'])}): {_cell(e['reason'])}" for e in flagged]
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write both reports into the workspace and the project, and the progress summary."""
    ctx = runtime.context
    ctx.executed.append("report")
    doc = results_document(state, ctx)
    ws, project = ctx.config.workspace, ctx.config.project_dir
    text = json.dumps(doc, indent=2, default=str) + "\n"
    md = _markdown(doc, state, project)
    for folder in (ws, project):
        _write(folder / "results.json", text)
        _write(folder / "report.md", md)
    save_engine(ctx.config)
    ctx.progress.finish(summary_of(doc["objects"]))
    log.info("Wrote report", extra={"fields": {"node": "report", **doc["counts"]}})
    return {"report": {"results": str(ws / "results.json"), "markdown": str(ws / "report.md")}}
