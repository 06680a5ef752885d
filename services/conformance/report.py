"""A conformance run as a person reads it, as JSON for tools, and as JUnit XML for CI dashboards."""

import json
import platform
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from services.conformance.runner import ERROR, FAILED, PASSED, SKIPPED, XFAIL, XPASS, CaseResult
from services.conformance.target import TargetOptions

MARK = {PASSED: "PASS", FAILED: "FAIL", ERROR: "ERROR", SKIPPED: "SKIP", XFAIL: "XFAIL", XPASS: "XPASS"}


def line(result: CaseResult) -> str:
    text = f"{MARK[result.status]:<5} {result.case.id}"
    if result.status != PASSED:
        text += f"\n      {result.message}"
        if result.status in (FAILED, XPASS) and result.case.rule:
            text += f"\n      contract: {result.case.rule}"
    return text


def counts(results: list[CaseResult]) -> Counter:
    return Counter(r.status for r in results)


def summary(options: TargetOptions, results: list[CaseResult], seconds: float) -> str:
    c = counts(results)
    parts = [f"{c[s]} {s}" for s in (PASSED, FAILED, ERROR, SKIPPED, XFAIL, XPASS) if c[s]]
    verdict = "CONFORMS" if not any(r.bad for r in results) else "DOES NOT CONFORM"
    bad = [r for r in results if r.bad]
    lines = [
        f"{options.kind} {options.agency_id} at {options.address}"
        f" ({'plaintext' if options.plaintext else 'mutual TLS'}): {verdict}",
        f"{len(results)} cases: {', '.join(parts)} in {seconds:.1f} s",
    ]
    if bad:
        lines.append("Not conforming: " + ", ".join(r.case.id for r in bad))
    return "\n".join(lines)


def as_json(options: TargetOptions, results: list[CaseResult], seconds: float) -> dict:
    return {
        "target": {"address": options.address, "agency_id": options.agency_id, "kind": options.kind,
                   "transport": "plaintext" if options.plaintext else "mutual TLS"},
        "conforms": not any(r.bad for r in results),
        "counts": dict(counts(results)),
        "seconds": round(seconds, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cases": [
            {"id": r.case.id, "title": r.case.title, "file": r.case.source, "status": r.status,
             "message": r.message, "rule": r.case.rule, "step": r.step if r.status in (FAILED, ERROR) else None,
             "calls": r.calls, "seconds": round(r.seconds, 4)}
            for r in results
        ],
    }


def write_json(path: str | Path, options: TargetOptions, results: list[CaseResult], seconds: float) -> None:
    Path(path).write_text(json.dumps(as_json(options, results, seconds), ensure_ascii=False, indent=2) + "\n",
                          encoding="utf-8")


def as_junit(options: TargetOptions, results: list[CaseResult], seconds: float) -> ET.ElementTree:
    """One testsuite per case file; xfail counts as skipped, xpass as a failure (the list is stale)."""
    suites = ET.Element("testsuites", name=f"chakong conform {options.agency_id}", time=f"{seconds:.3f}")
    by_file: dict[str, list[CaseResult]] = {}
    for r in results:
        by_file.setdefault(r.case.source, []).append(r)
    for source, group in by_file.items():
        c = counts(group)
        suite = ET.SubElement(
            suites, "testsuite", name=f"{options.kind}.{source.removesuffix('.yaml')}", tests=str(len(group)),
            failures=str(c[FAILED] + c[XPASS]), errors=str(c[ERROR]), skipped=str(c[SKIPPED] + c[XFAIL]),
            time=f"{sum(r.seconds for r in group):.3f}", hostname=platform.node(),
        )
        for r in group:
            case = ET.SubElement(suite, "testcase", name=r.case.id, classname=f"{options.kind}.{source}",
                                 time=f"{r.seconds:.3f}")
            if r.status in (FAILED, XPASS):
                ET.SubElement(case, "failure", message=r.message, type=r.status).text = (
                    f"{r.case.title}\n{r.message}\ncontract: {r.case.rule}")
            elif r.status == ERROR:
                ET.SubElement(case, "error", message=r.message, type="error").text = r.message
            elif r.status in (SKIPPED, XFAIL):
                ET.SubElement(case, "skipped", message=r.message)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: str | Path, options: TargetOptions, results: list[CaseResult], seconds: float) -> None:
    as_junit(options, results, seconds).write(path, encoding="utf-8", xml_declaration=True)
