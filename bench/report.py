"""The results: machine info, the table (printed and written as Markdown), JSON, the scaling plot."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import oss2

from bench.cloud import ROOT
from bench.model import Scenario, ratio, secs, size


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory / 2**30, 1),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "oss2": oss2.__version__, "commit": commit.stdout.strip() or "?",
            "load average": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def table(rows: list[dict[str, Any]]) -> list[str]:
    """A Markdown table of dicts (keys starting with ``_`` are data, not columns)."""
    if not rows:
        return []
    columns = [key for key in rows[0] if not key.startswith("_")]
    lines = ["| " + " | ".join(c.strip() for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


#: What a smoke run says instead of yes/no: its sizes make the targets meaningless.
NOT_JUDGED = "n/a (smoke size)"


def judged(setup: dict[str, Any]) -> bool:
    """Whether the run's sizes make its targets meaningful (not a smoke run)."""
    return setup.get("size") != "smoke"


def targets(scenarios: list[Scenario], meaningful: bool = True) -> list[dict[str, Any]]:
    return [{"#": s.key, "target": t.what, "value": t.value, "goal": t.goal,
             "met": ("yes" if t.met else "**no**") if meaningful else NOT_JUDGED,
             "why not": t.why if meaningful else ""} for s in scenarios for t in s.targets]


def against_peer(scenarios: list[Scenario]) -> list[dict[str, Any]]:
    """One row per run against the plain peer: cold and warm side by side (bench/versus.py)."""
    rows = []
    for s in scenarios:
        if "peer" in s.data and "setup" in s.data:
            ours, peer, setup = s.data["ours"], s.data["peer"], s.data["setup"]
            rows.append({"#": s.key, "files": f"{setup['files']} × {size(setup['each'])}", "C": setup["concurrency"],
                         "latency": f"{setup['latency'] * 1000:g} ms", "profile": setup["profile"],
                         "ours cold": secs(ours["cold"]), "peer cold": secs(peer["cold"]),
                         "ours/peer cold": ratio(ours["cold"] / peer["cold"]), "ours warm": secs(ours["warm"]),
                         "peer warm": secs(peer["warm"]), "ours/peer warm": ratio(ours["warm"] / peer["warm"])})
    return rows


def markdown(info: dict[str, Any], setup: dict[str, Any], scenarios: list[Scenario],
             sweeps: dict[str, list[dict[str, Any]]], plot: str | None) -> str:
    lines = ["# Benchmark results", "",
             f"{info['date']} · {info['cpu']} · {info['cores']} cores · {info['memory_gib']} GiB · {info['os']} · "
             f"Python {info['python']} · oss2 {info['oss2']} · commit {info['commit']} · size: {setup['size']} · "
             f"load average at the end {info['load average']}", "",
             " · ".join(f"{k}: {v}" for k, v in setup.items() if k != "size"), "",
             "## Scenarios", ""]
    lines += table([{"#": s.key, "scenario": s.title, "ours": s.ours, "baselines": s.baselines, "floor": s.floor,
                     "ratios": s.ratios, "requests": s.requests} for s in scenarios])
    lines += ["", "## Targets", ""]
    if not judged(setup):
        lines += ["Smoke run: its sizes make the targets meaningless; it only checks that the suite runs.", ""]
    lines += table(targets(scenarios, judged(setup)))
    if against_peer(scenarios):
        lines += ["", "## Against the plain peer, cold and warm", "", *table(against_peer(scenarios))]
    for s in scenarios:
        if s.details or s.notes:
            lines += ["", f"## {s.key}. {s.title}"]
            if s.details:
                lines += ["", *table(s.details)]
            if s.notes:
                lines += ["", *(f"- {note}" for note in s.notes)]
    if plot:
        lines += ["", f"![scaling]({plot})"]
    for name, rows in sweeps.items():
        lines += ["", f"## Tuning: {name}", "", *table(rows)]
    return "\n".join(lines) + "\n"


def write(out: Path, info: dict[str, Any], setup: dict[str, Any], scenarios: list[Scenario],
          sweeps: dict[str, list[dict[str, Any]]], plot: str | None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(info, setup, scenarios, sweeps, plot)
    (out / "latest.md").write_text(text)
    scenario_documents = [s.public() for s in scenarios]
    if not judged(setup):
        for scenario in scenario_documents:
            for target in scenario["targets"]:
                target["met"], target["why"] = None, NOT_JUDGED
    document = {"machine": info, "setup": setup, "scenarios": scenario_documents, "tuning": sweeps}
    (out / "latest.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    return out / "latest.md"


# -- docs/performance.md and the README's table, from a results document (latest.json) ----------------------
DOC = "docs/performance.md"
START, END = "<!-- performance:start -->", "<!-- performance:end -->"
RESULTS = "bench/results/latest.json"


def run_line(info: dict[str, Any]) -> str:
    return (f"{info.get('date', '?')}, commit {info.get('commit', '?')}, {info.get('cpu', '?')}, "
            f"{info.get('cores', '?')} cores, {info.get('memory_gib', '?')} GiB, {info.get('os', '?')}, "
            f"Python {info.get('python', '?')}")


def _targets_met(document: dict[str, Any]) -> tuple[int, int]:
    targets = [t for s in document["scenarios"] for t in s.get("targets", [])]
    return sum(1 for t in targets if t["met"]), len(targets)


def performance_doc(document: dict[str, Any], template: str) -> str:
    """docs/performance.md: the template with the run's description and every table of ``document``."""
    info, setup = document["machine"], document["setup"]
    run = ["## The run", "",
           f"{run_line(info)}; oss2 {info.get('oss2', '?')}; load average at the end {info.get('load average', '?')}.",
           "", *(f"- {key}: {value}" for key, value in setup.items())]
    scenarios = document["scenarios"]
    results = ["## Scenarios", "",
               *table([{"#": s["key"], "scenario": s["title"], "ours": s["ours"], "baselines": s["baselines"],
                        "floor": s["floor"], "ratios": s["ratios"], "requests": s["requests"]} for s in scenarios]),
               "", "## Targets", "",
               *table([{"#": s["key"], "target": t["what"], "value": t["value"], "goal": t["goal"],
                        "met": "yes" if t["met"] else "**no**", "why not": t["why"]}
                       for s in scenarios for t in s.get("targets", [])])]
    for s in scenarios:
        if s.get("details") or s.get("notes"):
            results += ["", f"### {s['key']}. {s['title']}"]
            if s.get("details"):
                results += ["", *table(s["details"])]
            if s.get("notes"):
                results += ["", *(f"- {note}" for note in s["notes"])]
            if s["key"] == "6":
                results += ["", "![scaling](scaling.png)"]
    for name, rows in document.get("tuning", {}).items():
        results += ["", f"## Tuning: {name}", "", *table(rows)]
    text = template.replace("<!-- bench:run -->", "\n".join(run)).replace("<!-- bench:results -->", "\n".join(results))
    return text.rstrip("\n") + "\n"


def readme_block(document: dict[str, Any]) -> str:
    """The README's short performance table, between its markers."""
    met, total = _targets_met(document)
    setup = document["setup"]
    info = document["machine"]
    lines = [f"Last full run: {info.get('date', '?')[:10]}, {info.get('cores', '?')} cores ({info.get('cpu', '?')}), "
             f"emulators with {setup.get('latency', '?')} and {setup.get('copy rate', '?')}. Targets met: {met} of "
             f"{total}. Every table, the method and how to reproduce: [{DOC}]({DOC}).", "",
             "| scenario | this function | compared |", "| --- | --- | --- |"]
    # Left to docs/performance.md: scaling (scenario 1 at other sizes), scenario 1 against the peer on each
    # profile (the review's case stands for them) and the CPU per copy.
    lines += [f"| {s['title']} | {s['ours']} | {s['ratios']} |" for s in document["scenarios"]
              if s["key"] not in ("6", "1a", "1q", "C")]
    return "\n".join(lines)


def replace_block(text: str, start: str, end: str, body: str) -> str:
    """``text`` with what lies between the markers ``start`` and ``end`` replaced by ``body``."""
    begin, finish = text.index(start) + len(start), text.index(end)
    return f"{text[:begin]}\n{body}\n{text[finish:]}"


def write_docs(results: Path, root: Path) -> list[Path]:
    """Rewrite docs/performance.md and the README's performance table from the results document."""
    document = json.loads(results.read_text())
    doc = root / DOC
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(performance_doc(document, (root / "bench" / "performance.md.in").read_text()))
    readme = root / "README.md"
    readme.write_text(replace_block(readme.read_text(), START, END, readme_block(document)))
    return [doc, readme]


def scaling_plot(points: list[dict[str, Any]], path: Path, what: str, cpu_per_request: float) -> bool:
    """Wall time against files (log-log): ours, the baselines, the floor. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    files = [p["files"] for p in points]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for key, label, style in (("sequential", "sequential (HEAD + CopyObject loop)", "s-"),
                              ("parallel", "3-way parallel (ossutil --jobs 3)", "^-"),
                              ("bare", "bare requests on the function's OSS stack (same C)", "x-"),
                              ("ours", f"ours (COPY_CONCURRENCY={points[0]['concurrency']})", "o-"),
                              ("floor", "floor: (3 + 2·⌈files/C⌉) × latency", "k--")):
        axes.plot(files, [p[key] for p in points], style, label=label)
    axes.plot(files, [p["ours_requests"] * cpu_per_request for p in points], ":", color="grey",
              label=f"OSS client CPU alone: requests × {cpu_per_request * 1000:.2f} ms (one core)")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(files, [str(n) for n in files])
    axes.set_xlabel(f"result files in the job ({what})")
    axes.set_ylabel("wall time (s)")
    axes.set_title("Scenario 6: wall time against files")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return True
