"""Faults of the Files API and Batch Mode: whole jobs that fail, expire or never start, and cut uploads.

Per-line batch errors need no kind of their own: every line is answered by the generateContent logic, so
the generateContent faults (`http_500`, `safety`, ... injected, by rule or at a rate) reach lines too, and a
line given an error fault gets that error as its google.rpc.Status.
"""

from __future__ import annotations

from labeling.errors import ConfigError
from labeling.fake_gemini.faults import FaultPlan

# Every batch-level fault kind, with what the client sees.
BATCH_FAULT_KINDS: dict[str, str] = {
    "batch_failed": "the next batch runs, then ends BATCH_STATE_FAILED (done, an error, no output)",
    "batch_expired": "the next batch runs until 48 h after its creation, then BATCH_STATE_EXPIRED without results",
    "batch_stuck_pending": "the next batch stays BATCH_STATE_PENDING for ever",
    "upload_interrupted": "the next upload chunk keeps FakeGemini.upload_interrupt_bytes bytes, then the "
    "connection drops unanswered; query the upload URL and resume from its offset",
}
JOB_KINDS = frozenset({"batch_failed", "batch_expired", "batch_stuck_pending"})


def check_batch_kind(kind: str) -> str:
    """Return `kind` or raise `ConfigError` naming the batch fault kinds."""
    if kind not in BATCH_FAULT_KINDS:
        raise ConfigError(f"Unknown batch fault kind {kind!r}: use one of {', '.join(BATCH_FAULT_KINDS)}.")
    return kind


def check_job_kind(kind: str) -> str:
    """Return `kind` or raise `ConfigError`: the faults a created batch job can be given."""
    if kind not in JOB_KINDS:
        raise ConfigError(f"{kind!r} is not a batch job fault: use one of {', '.join(sorted(JOB_KINDS))}.")
    return kind


def job_fault_plan(seed: int = 0) -> FaultPlan:
    """The fault of each created batch job: queued ones first, then seeded random rates (the request plan's
    mechanism, over the job kinds)."""
    return FaultPlan(seed=seed, check=check_job_kind)
