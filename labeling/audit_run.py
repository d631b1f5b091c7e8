"""One audit as the page and the CLI show it: the technical facts' audit with the duplicate search's findings first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labeling.audit import Audit, Finding, audit_store
from labeling.duplicates import DuplicateReport, find_duplicates
from labeling.errors import InputError
from labeling.store import Store

LEAKAGE_ACTION = (
    "Remove the leaked images from one side before training and evaluating (the debiased export leaves them out), "
    "and check how the datasets were assembled."
)
COPIES_ACTION = (
    "Keep one image of each group (the debiased export does), so copies neither weigh twice nor straddle a "
    "train/test split."
)


@dataclass(frozen=True)
class AuditRun:
    """The audit, and the duplicate search it includes (None when nothing is hashed yet: `note` says why)."""

    audit: Audit
    duplicates: DuplicateReport | None
    note: str = ""


def run_audit(store: Store, datasets: Sequence[str], distance: int) -> AuditRun:
    """Search duplicates (saving the groups for Review), then audit the facts with leakage findings first."""
    try:
        duplicates = find_duplicates(store, datasets, distance)
    except InputError as exc:  # no hashes yet: the audit itself says which datasets to scan
        return AuditRun(audit_store(store, datasets), None, str(exc))
    return AuditRun(audit_store(store, datasets, extra_findings=duplicate_findings(duplicates)), duplicates)


def finding_line(finding: Finding) -> str:
    """A finding as one line a person reads: what was found, then what to do."""
    text = finding.text if finding.text.endswith((".", "!", "?")) else finding.text + "."
    return f"{text} What to do: {finding.action}"


def duplicate_findings(report: DuplicateReport) -> list[Finding]:
    """Leakage (the same picture under two labels) first, then copies within one dataset."""
    findings = []
    leaking = [g for g in report.groups if g.leakage]
    if leaking:
        real = report.leaked_real_images
        labels = " and ".join(sorted({label for g in leaking for label in g.labels}))
        exact = sum(g.kind == "exact" for g in leaking)
        findings.append(
            Finding(
                "critical",
                "leakage",
                f"Leakage: {_count(len(leaking), 'picture')} {'appears' if len(leaking) == 1 else 'appear'} under "
                f"both {labels} ({exact:,} byte-identical, {len(leaking) - exact:,} near); "
                f"{_count(real, 'REAL image')} {'has' if real == 1 else 'have'} a copy on the other side, so a "
                "detector can be tested on what it was trained on.",
                LEAKAGE_ACTION,
                source="duplicates",
            )
        )
    for dataset in report.datasets:
        groups = [g for g in report.groups if not g.leakage and g.datasets == (dataset,)]
        if groups:
            copies = sum(len(g.images) - 1 for g in groups)
            findings.append(
                Finding(
                    "medium",
                    "duplicates",
                    f"{_count(copies, 'image')} of {dataset} {'is a copy' if copies == 1 else 'are copies'} of "
                    f"another image in it ({_count(len(groups), 'group')}; exact or within {report.distance} bits "
                    "of pHash and dHash).",
                    COPIES_ACTION,
                    source="duplicates",
                )
            )
    return findings


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
