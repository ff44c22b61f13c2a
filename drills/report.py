"""The drills' figures as text: a one-line summary per drill, docs/reliability.md and the README's short
reliability table, both from the last full run of each drill (drills/results/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _n(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _kinds(counts: dict[str, int] | None) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{kind} {_n(count)}" for kind, count in sorted(counts.items(), key=lambda kv: -kv[1]))


def _cell(text: str | None, limit: int = 100) -> str:
    """Text for a table cell: one line, no pipe, cut at ``limit`` characters."""
    text = " ".join((text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _total(counts: dict[str, int] | None) -> int:
    return sum((counts or {}).values())


def _lost(doc: dict[str, Any]) -> str:
    lost = {k: v for k, v in (doc.get("lost") or {}).items() if v}
    if not lost and doc.get("passed"):
        return "nothing"
    parts = [f"{k} {v}" for k, v in lost.items()]
    if not doc.get("passed"):
        parts.append(f"{len(doc.get('problems', []))} problem(s)")
    return ", ".join(parts)


def summary(doc: dict[str, Any]) -> str:
    """One line for the console."""
    status = "passed" if doc.get("passed") else "FAILED"
    text = f"  {doc['name']}: {status} in {doc.get('seconds', 0):.0f} s; lost: {_lost(doc)}"
    for problem in doc.get("problems", [])[:10]:
        text += f"\n    - {problem}"
    return text


# -- one section per drill -------------------------------------------------------------------------
def _faults(doc: dict[str, Any]) -> tuple[str, list[str]]:
    f = doc["figures"]
    injected = f.get("injected", {})
    row = [f"{_n(f['jobs'])} jobs, {_n(f['files'])} files", _n(_total(injected.get("oss")) + _total(injected.get("mps"))
                                                               + f.get("mpsThrottledByQpsCap", 0)),
           _n(_total(f.get("retries"))), f"{_n(f.get('redeliveries', 0))} redeliveries"]
    lines = [
        f"{_n(f['jobs'])} jobs ({_n(f['files'])} files, {_n(f['bytes'])} bytes; {_n(f['multipartFiles'])} multipart "
        f"copies, {_n(f['crossRegionJobs'])} cross-region jobs streamed, {_n(f['pendingFirst'])} jobs first "
        f"`Analysing`) announced in {_n(f['deliveries'])} events rotating through every trigger format, on two "
        f"FC instances at once, with client timeouts of 1 s (`OSS_TIMEOUT_SECONDS`, `MPS_TIMEOUT_SECONDS`).",
        "",
        f"* Faults injected by OSS: {_kinds(injected.get('oss'))}.",
        f"* Faults injected by MPS: {_kinds(injected.get('mps'))}; plus {_n(f.get('mpsThrottledByQpsCap', 0))} "
        "`Throttling` answers from its QPS limit (8 calls/s against two instances capped at 6 each).",
        f"* Requests that got a fault, by operation: {_kinds(f.get('faultedRequestsByOperation'))} "
        f"(of {_n(f.get('ossRequests'))} OSS requests and {_n(f.get('mpsCalls'))} MPS calls).",
        f"* Retries the function made (its `invocation.done` lines): {_kinds(f.get('retries'))}.",
        f"* Invocations: {_n(f.get('invocations'))}, of which {_n(f.get('invocationsRaised'))} raised (outages "
        f"longer than the function's own retries) and were delivered again as the trigger would: "
        f"{_n(f.get('redeliveries'))} redeliveries, {_n(f.get('sweeps'))} timer sweeps; dead letters: "
        f"{_n(doc['lost'].get('deadLetters', 0))}.",
        f"* Outcomes seen: {_kinds(f.get('outcomes'))}; every job committed exactly once: "
        f"{_n(f.get('committedExactlyOnce'))} of {_n(f['jobs'])}.",
        "* Checked against a fault-free run of the same jobs: every manifest equal (but `committedAt` and "
        f"`mpsRequestId`) — {_n(doc['lost'].get('manifestsDiffering', 0))} differ; every destination object "
        f"byte-identical to its source — {_n(doc['lost'].get('filesDiffering', 0))} differ; objects written "
        f"that the fault-free run did not write: {_n(doc['lost'].get('strayObjects', 0))}; multipart uploads left "
        f"open holding parts: {_n(doc['lost'].get('uploadsLeftOpenWithParts', 0))}.",
        f"* Empty multipart uploads left open: {_n(f.get('emptyUploadsFromLateInitiateAnswers', 0))} — an "
        "`InitiateMultipartUpload` answered after the client timeout is retried, and the upload the late answer "
        "created is never used: it holds no part (stores nothing) and the sweep aborts uploads older than twice "
        "the function's timeout.",
    ]
    return "\n".join(lines), row


def _crashes(doc: dict[str, Any]) -> tuple[str, list[str]]:
    f = doc["figures"]
    how = f.get("crashPointsByHow", {})
    row = [f"{_n(f['crashPoints'])} crash points", f"{_n(f['crashPoints'])} stops", "—", "—"]
    lines = [
        "A job with a pending record, five small files and a three-part multipart file, stopped:",
        "",
        f"* at each of the {_n(f['requestsInAJobRun'])} OSS requests of its run in turn (the k-th refused with a "
        "non-retried 403, so the invocation raises right there): list, record read, HEADs, copies, initiate, "
        "part copies, complete, verify, manifest, record delete;",
        "* by killing its instance at the FC timeout (3 s) after some copies, mid multipart copy, between the last "
        "copy and the manifest, and after the manifest before the pending record is removed;",
        "* by its own time budget running out after some copies; by faults outlasting its retries (mid multipart, "
        "at the manifest, at the record delete); with a wrong file of the right size at the destination, a result "
        "file deleted after a partial copy, and every cross-region GET corrupted.",
        "",
        f"Stops by kind: {_kinds(how)}. Recoveries: {_n(f['recoveries'])} (by the timer sweep or a redelivered "
        f"message, {_n(f['recoveryInvocations'])} invocations). Intact files copied again: "
        f"{_n(f['intactFilesCopiedAgain'])} (of {_n(f.get('intactFilesAtRecovery', 0))} intact when the "
        f"recoveries started). Manifests ever seen with a missing or wrong file: {_n(f['manifestsWithBadFiles'])}. "
        f"Not converged to the fault-free manifest: {_n(f['notConverged'])}. Pending records left: "
        f"{_n(f['pendingRecordsLeft'])}. Multipart uploads left open: "
        f"{_n(f['uploadsLeftByKilledInstances'])} by the instance killed mid multipart copy (the sweep "
        f"aborts it once it is older than twice the function's timeout), {_n(f['uploadsLeftOtherwise'])} otherwise.",
    ]
    return "\n".join(lines), row


def _duplicates(doc: dict[str, Any]) -> tuple[str, list[str]]:
    f = doc["figures"]
    modes = f.get("deliveriesByMode", {})
    row = [f"{_n(f['jobs'])} jobs", "—", "—", f"{_n(f['duplicatesSent'])} duplicates"]
    lines = [
        f"{_n(f['jobs'])} jobs delivered {_n(f['deliveries'])} times ({_n(f['duplicatesSent'])} duplicates), "
        f"{_n(f['copiesAtOnce'])} at a time through different trigger formats: {_n(modes.get('processes', 0))} "
        f"deliveries to separate FC instances (one process each) released at the same instant, "
        f"{_n(modes.get('threads', 0))} concurrent requests on one instance (threads sharing its pools and rate "
        f"limiter), {_n(modes.get('overlapping', 0))} job references in overlapping batches, timer lists and single "
        "messages fired together (one event naming a job three times).",
        "",
        f"Manifest PUTs tried: {_n(f['manifestPutsTried'])}, refused by `x-oss-forbid-overwrite` (409): "
        f"{_n(f['manifestPutsRefused409'])}; jobs with other than exactly one manifest written: "
        f"{_n(doc['lost'].get('jobsWithoutExactlyOneManifest', 0))}. Outcomes: {_kinds(f.get('outcomes'))} — "
        f"exactly one `committed` per job, `error`: {_n(doc['lost'].get('errorOutcomes', 0))}. Files differing "
        f"from their source: {_n(doc['lost'].get('filesDiffering', 0))}.",
    ]
    return "\n".join(lines), row


_EVENT_LABELS = {"job": "job ids let through", "rejected": "rejections", "sweep": "sweeps (timer events)",
                 "nothing": "timers naming no job (an empty jobIds list)"}


def _hostile(doc: dict[str, Any]) -> tuple[str, list[str]]:
    f = doc["figures"]
    answers = f.get("hostileMpsAnswers", {})
    row = [f"{_n(f['inputsTried'])} inputs", "—", "—", "—"]
    e, b, a, x = (f.get(k, {}) for k in ("eventProperty", "batchProperty", "answerProperty", "endToEnd"))
    lines = [
        f"{_n(f['inputsTried'])} inputs generated by Hypothesis and tried:",
        "",
        f"* {_n(e.get('inputs', 0))} events — random bytes, random and deep (up to 40,000 levels) or huge (up to "
        "2 MB) JSON, every trigger envelope with fields of the wrong type, over-long and look-alike job ids "
        "(full-width letters, trailing newline, Arabic digits), bodies base64'd once or twice, in 11 encodings: "
        f"{_kinds({_EVENT_LABELS.get(k, k): v for k, v in e.items() if k != 'inputs'})} — never an exception, every "
        "job id let through "
        "32 hex characters, every rejection with a short printable reason;",
        f"* {_n(b.get('inputs', 0))} MNS batches ({_n(b.get('items', 0))} items) mixing valid notifications with "
        "hostile items: every valid job came through, every hostile item was one rejection;",
        f"* {_n(a.get('inputs', 0))} `QueryIProductionJob` answers served over HTTP to the function's MPS client: "
        f"{_kinds({k: v for k, v in a.items() if k not in ('inputs', 'files')})}; {_n(a.get('files', 0))} "
        "destination keys planned, every one under the job's prefix, safe and at most 1023 bytes;",
        f"* {_n(x.get('inputs', 0))} of the hostile events invoked on the function through the emulators: it "
        f"always answered ({_kinds({k: v for k, v in x.items() if k != 'inputs'})}), never raised, never wrote.",
        "",
        f"Hostile MPS answers through the emulators, all in one MNS batch with a good job (a job of "
        f"{_n(f.get('manyFiles', 0))} files among them: {_n((answers.get('thousands-of-files') or {}).get('files'))} "
        "in its manifest); nothing was read outside `SOURCE_BUCKETS` and no rejected job had anything copied "
        "(but the files found before a missing one):",
        "",
        "| MPS answer | outcome | reason given |",
        "| --- | --- | --- |",
        *(f"| {name.replace('-', ' ')} | {v.get('outcome')} | {_cell(v.get('reason'))} |"
          for name, v in answers.items()),
    ]
    return "\n".join(lines), row


def _security(doc: dict[str, Any]) -> tuple[str, list[str]]:
    f = doc["figures"]
    refusals = f.get("refusals", {})
    row = [f"{_n(f['jobs'] + f['hostileJobs'])} jobs", "—", "—", "—"]
    lines = [
        f"{_n(f['jobs'])} jobs (multipart, cross-region, pending, expired, failed) and {_n(f['hostileJobs'])} "
        "hostile ones (output in a decoy bucket, in the destination bucket, keys climbing out of the prefix, "
        "an absolute key, a look-alike host) with `SOURCE_BUCKETS` set and `DEST_PREFIX=tenant-a/iproduction/` "
        "beside another tenant's objects.",
        "",
        f"* Every one of the {_n(f['ossRequestsAudited'])} OSS requests checked from the emulator's log "
        f"({_kinds(f.get('requestsByOperation'))}): reads outside `SOURCE_BUCKETS` or writes/reads outside "
        f"`DEST_PREFIX`: {_n(doc['lost'].get('requestsOutsideAllowed', 0))}; requests to the decoy bucket: "
        f"{_n(f['requestsToDecoyBucket'])}. Every other drill audits its own request log the same way.",
        f"* Credentials looked for (raw, URL-encoded once and twice, base64) in {_n(f['capturedLinesScanned'])} "
        f"captured lines (logs, answers, error messages, stack traces) and {_n(f['objectsWrittenScanned'])} "
        f"objects written: found {_n(doc['lost'].get('secretsLeaked', 0))} times. Every drill scans all it "
        "captured the same way.",
        "* Wrong MPS credentials, each invoked twice (the trigger's retry): the job ends `error` at the first "
        "refusal (MPS called once per invocation: not retried within it), the handler raises so that the trigger "
        "retries and finally dead-letters the message, the reason names the refusal, no secret is echoed:",
        "",
        "| MPS refuses | MPS calls | raised | reason given (start) |",
        "| --- | --- | --- | --- |",
        *(f"| {name.replace('-', ' ')} | {v['mpsCalls']} | {_n(v['raised'])} | {_cell(v.get('reason'), 90)} |"
          for name, v in refusals.items()),
    ]
    return "\n".join(lines), row


def _pending(doc: dict[str, Any]) -> tuple[str, list[str]]:
    f = doc["figures"]
    registry, scale = f.get("registry", {}), f.get("scale", {})
    row = [f"{_n(scale.get('pendingJobs', 0))} pending jobs", "—", "—", "—"]
    lines = [
        f"* A registry of {_n(registry.get('records', 0))} records ({_kinds(registry.get('byKind'))} and "
        f"{_n(registry.get('strayKeys', 0))} keys that are not job ids), swept: {_kinds(registry.get('firstSweep'))}"
        "; stuck jobs moved to `_expired/` with their history (`firstSeen`, attempts) and a logged outcome, "
        "damaged records restarted, stray keys left alone and logged.",
        f"* {_n(scale.get('pendingJobs', 0))} pending jobs swept by one FC instance with a "
        f"{_n(scale.get('fcTimeoutSeconds', 0))} s timeout and `MPS_MAX_QPS={_n(scale.get('mpsMaxQps', 0))}`, while "
        f"{_n(scale.get('jobsFinishedMeanwhile', 0))} of them finished: {_n(scale.get('sweeps', 0))} sweeps until "
        f"every job had been looked at (least recently checked first); longest sweep "
        f"{_n(scale.get('longestSweepSeconds', 0.0))} s, none killed at the timeout; {_n(scale.get('mpsCalls', 0))} "
        f"MPS calls, at most {_n(scale.get('mpsMaxCallsInOneSecond', 0))} in any one-second window as measured by "
        f"the MPS emulator (cap {_n(scale.get('mpsMaxQps', 0))}), {_n(scale.get('mpsThrottled', 0))} throttled.",
    ]
    return "\n".join(lines), row


def _quota_run(run: dict[str, Any]) -> str:
    ratio = run["seconds"] / run["idealSeconds"]
    return (f"{_n(run['jobsCommitted'])} jobs committed in {_n(run['seconds'])} s ({ratio:.2f}× the ideal "
            f"{_n(run['idealSeconds'])} s; instances done after "
            f"{', '.join(_n(s) for s in run.get('secondsPerInstance', []))} s); {_n(run['mpsCalls'])} MPS calls, "
            f"{_n(run['mpsThrottled'])} throttled (**{run['throttledShare']:.1%}**); at most "
            f"{_n(run['mpsMaxCallsInOneSecond'])} calls in any one-second window as MPS counted them "
            f"({_n(run['mpsMaxAcceptedInOneSecond'])} accepted); retries made: {_kinds(run.get('retries'))}; "
            f"invocations retried: "
            f"{_n(run['invocationsRetried'])}; rate cuts per instance: "
            f"{', '.join(_n(c) for c in run.get('rateCutsPerInstance', []))}")


def _quota(doc: dict[str, Any]) -> tuple[str, list[str]]:
    f = doc["figures"]
    adaptive, fixed = f["adaptive"], f.get("fixed")
    row = [f"{_n(f['jobs'])} jobs, {_n(f['instances'])} instances",
           f"{_n(adaptive['mpsThrottled'])} `Throttling` ({adaptive['throttledShare']:.1%})",
           _n(_total(adaptive.get("retries"))), "—"]
    lines = [
        f"{_n(f['instances'])} FC instances, each in its own process with `MPS_MAX_QPS={f['mpsMaxQps']}` and a "
        f"{_n(f['fcTimeoutSeconds'])} s timeout, invoked at the same instant, each with a timer event naming a "
        f"different quarter of {_n(f['jobs'])} finished jobs (one in ten with one small result file), against "
        f"the MPS emulator accepting {_n(f['accountQps'])} `QueryIProductionJob` calls in any sliding second for "
        f"the whole account and answering `Throttling` with `x-acs-retry-after: {f['retryAfterMs']}` above "
        f"that ({f['mpsLatencySeconds'] * 1000:.0f} ms per answer). Invocations that left jobs in `error` were "
        "invoked again with the same event, as the trigger would.",
        "",
        f"* With the adaptive rate: {_quota_run(adaptive)}.",
    ]
    if fixed:
        lines.append(f"* With it switched off (`MPS_ADAPTIVE=0`): {_quota_run(fixed)}.")
    lines += ["", "The most calls in one second come in the first, when every instance starts at its full rate "
              "(a lone instance keeps its speed); the throttled answers of that second cut each instance's rate, "
              "and from then on the instances share the quota by themselves. The time is the slowest "
              "instance's: each has its own quarter of the jobs."]
    return "\n".join(lines), row


RENDER = {"faults": ("Faults", _faults), "crash-points": ("Crash points", _crashes),
          "duplicates": ("Duplicates", _duplicates), "hostile-input": ("Hostile input", _hostile),
          "security": ("Security", _security), "pending-registry": ("Pending registry", _pending),
          "quota": ("Shared MPS quota", _quota)}


def _run_line(ran: list[dict[str, Any]]) -> str:
    when = max((doc.get("finished", "") for doc in ran), default="")
    commits = sorted({doc.get("commit", "?") for doc in ran})
    machine = ran[0].get("machine", {}) if ran else {}
    return (f"{when[:10] or 'never'}, commit {', '.join(commits) or '?'}, {machine.get('cpus', '?')} cores, "
            f"{machine.get('system', '?')}, Python {machine.get('python', '?')}")


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def summary_table(results: dict[str, dict[str, Any]], order: list[str], link: str = "") -> list[str]:
    """The one table of every drill: a row each, linking to its section (in ``link``, or this document)."""
    rows = ["| drill | size | faults injected | retries made | duplicates sent | lost | time |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in order:
        title, renderer = RENDER[name]
        doc = results.get(name)
        if doc is None:
            rows.append(f"| {title} | not run at full size yet | | | | | |")
            continue
        try:
            _, row = renderer(doc)
        except (KeyError, TypeError, ValueError):
            row = ["?", "?", "?", "?"]
        rows.append(f"| [{title}]({link}#{_anchor(title)}) | {row[0]} | {row[1]} | {row[2]} | {row[3]} | "
                    f"{_lost(doc)} | {doc.get('seconds', 0):.0f} s |")
    return rows


def _verdict(results: dict[str, dict[str, Any]], order: list[str]) -> str:
    if all(results.get(n, {}).get("passed") for n in order):
        return "What was lost: **nothing**."
    return "What was lost: see the failed drills."


def render(results: dict[str, dict[str, Any]], order: list[str]) -> str:
    """docs/reliability.md: how the drills judge, how to run them, the table, a section per drill."""
    ran = [results[name] for name in order if name in results]
    head = [
        "# Reliability",
        "",
        "<!-- Written by `python -m drills --full` (and `python -m drills --docs`) from drills/results/*.json: "
        "do not edit by hand. -->",
        "",
        "The function is drilled the way Powertools tests its idempotency (parallel duplicates, time-outs mid-work, "
        "tampered payloads) and rclone proves its copies (checksums after the fact): faults, crashes, duplicates "
        "and hostile input on the local emulators, every verdict taken from the emulators' side — their request "
        "logs, the objects they hold, their counters — not from what the function says about itself.",
        "",
        "## How to reproduce",
        "",
        "```bash",
        "bash scripts/drills.sh --full   # every drill at full size (stopped after 40 min): rewrites drills/results/,",
        "                                # this document and the README's reliability table",
        "bash scripts/drills.sh --full --only faults   # one drill; the others keep their last full results",
        "bash scripts/drills.sh          # the reduced sizes CI runs (also in bash scripts/test.sh, tests/drills/)",
        "python -m drills --docs         # rewrite this document and the README's table from drills/results/",
        "```",
        "",
        "Reduced runs write their results to `build/drills/ci/` and never touch these figures.",
        "",
        "## The last full run",
        "",
        f"Figures from the last full run of each drill ({_run_line(ran)}).",
        *(f"For {', '.join(sorted(d['name'] for d in ran if d.get('source') == note))}: {note}." for note in
          sorted({d["source"] for d in ran if d.get("source")})),
        "",
        *summary_table(results, order),
        "",
        _verdict(results, order),
        "",
    ]
    sections = []
    for name in order:
        title, renderer = RENDER[name]
        doc = results.get(name)
        if doc is None:
            continue
        try:
            text, _ = renderer(doc)
        except (KeyError, TypeError, ValueError) as exc:
            text = f"(figures unreadable: {exc})"
        status = "" if doc.get("passed") else "\n\n**Failed:** " + "; ".join(doc.get("problems", [])[:5])
        sections.append(f"### {title}\n\n{text}{status}")
    return "\n".join([*head, "\n\n".join(sections), ""])


def readme_block(results: dict[str, dict[str, Any]], order: list[str], doc_link: str) -> str:
    """The README's short reliability table, between its markers."""
    ran = [results[name] for name in order if name in results]
    when = max((doc.get("finished", "") for doc in ran), default="")[:10] or "never"
    cpus = ran[0].get("machine", {}).get("cpus", "?") if ran else "?"
    return "\n".join([
        f"Last full run of each drill: {when}, {cpus} cores. Every figure and how each drill works: "
        f"[{doc_link}]({doc_link}).",
        "",
        *summary_table(results, order, doc_link),
    ])


def load(directory: Path) -> dict[str, dict[str, Any]]:
    results = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text())
        results[doc["name"]] = doc
    return results


START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"
DOC = "docs/reliability.md"


def replace_block(text: str, start: str, end: str, body: str) -> str:
    """``text`` with what lies between the markers ``start`` and ``end`` replaced by ``body``."""
    begin, finish = text.index(start) + len(start), text.index(end)
    return f"{text[:begin]}\n{body}\n{text[finish:]}"


def write(directory: Path, root: Path, order: list[str]) -> list[Path]:
    """Write docs/reliability.md and the README's table (between its markers) from ``directory``."""
    results = load(directory)
    doc = root / DOC
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(results, order))
    readme = root / "README.md"
    readme.write_text(replace_block(readme.read_text(), START, END, readme_block(results, order, DOC)))
    return [doc, readme]
