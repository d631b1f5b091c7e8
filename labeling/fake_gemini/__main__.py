"""`python -m labeling.fake_gemini`: run the fake Gemini server in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from labeling.errors import LabelingError
from labeling.fake_gemini.batch_faults import JOB_KINDS
from labeling.fake_gemini.faults import FAULT_KINDS
from labeling.fake_gemini.server import FakeGemini


def _kind_and_rate(kind: str, rate: str, form: str) -> tuple[str, float]:
    if kind not in FAULT_KINDS and kind not in JOB_KINDS:
        kinds = ", ".join([*FAULT_KINDS, *sorted(JOB_KINDS)])
        raise argparse.ArgumentTypeError(f"expected {form} with KIND one of {kinds}")
    try:
        return kind, float(rate)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{rate!r} is not a number") from exc


def fault_spec(text: str) -> tuple[str, float]:
    """`KIND[:RATE]` (RATE defaults to 1.0: every request) as (kind, rate)."""
    kind, _, rate = text.partition(":")
    return _kind_and_rate(kind, rate or "1.0", "KIND[:RATE]")


def _fault_rate(text: str) -> tuple[str, float]:
    """The older `KIND=RATE` spelling."""
    kind, _, rate = text.partition("=")
    if not rate:
        raise argparse.ArgumentTypeError("expected KIND=RATE")
    return _kind_and_rate(kind, rate, "KIND=RATE")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labeling.fake_gemini", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every answer")
    parser.add_argument("--rpm", type=int, default=0, help="requests per minute before 429s (0 = unlimited)")
    parser.add_argument(
        "--fault",
        type=fault_spec,
        action="append",
        dest="faults",
        default=[],
        metavar="KIND[:RATE]",
        help="answer this share of requests (default 1.0: all) with the fault KIND, repeatable (e.g. http_503:0.2);"
        " batch_failed, batch_expired and batch_stuck_pending apply to that share of created batch jobs",
    )
    parser.add_argument(
        "--fault-rate",
        type=_fault_rate,
        action="append",
        dest="faults",
        metavar="KIND=RATE",
        help="the older spelling of --fault KIND:RATE",
    )
    parser.add_argument("--log", metavar="FILE", help="append one JSON line per request to FILE")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    parser.add_argument(
        "--key",
        action="append",
        dest="keys",
        metavar="KEY",
        help="accept only this API key (repeatable; default: any non-empty key)",
    )
    parser.add_argument(
        "--thoughts-tokens",
        type=int,
        default=None,
        help="thoughtsTokenCount to report (default: by model family and thinkingConfig)",
    )
    parser.add_argument(
        "--batch-pending-seconds",
        type=float,
        default=1.0,
        metavar="N",
        help="seconds a batch job stays BATCH_STATE_PENDING (default 1)",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=2.0,
        metavar="N",
        help="seconds a batch job then stays BATCH_STATE_RUNNING before it succeeds (default 2)",
    )
    parser.add_argument(
        "--max-concurrent-batches",
        type=int,
        default=100,
        metavar="N",
        help="unended batch jobs allowed before a create gets 429 RESOURCE_EXHAUSTED (default 100)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags, serve until interrupted, return the exit code."""
    args = _parser().parse_args(argv)
    try:
        fake = FakeGemini(
            args.host,
            args.port,
            latency_s=args.latency,
            rpm_quota=args.rpm,
            fault_rates=dict(args.faults),
            seed=args.seed,
            valid_keys=args.keys,
            thoughts_tokens=args.thoughts_tokens,
            log_path=args.log,
            batch_pending_s=args.batch_pending_seconds,
            batch_running_s=args.batch_seconds,
        )
        fake.max_concurrent_batches = args.max_concurrent_batches
        url = fake.start()
    except (LabelingError, OSError) as exc:
        print(f"fake Gemini cannot start: {exc}", file=sys.stderr)
        return 2
    key = args.keys[0] if args.keys else "fake-key"
    print(f"Fake Gemini listening on {url}  (Ctrl-C to stop)")
    print("Point the google-genai SDK at it with:")
    for name, value in fake.env(key).items():
        print(f"  export {name}={value}")
    print("  unset GOOGLE_API_KEY   # the SDK prefers it over GEMINI_API_KEY")
    sys.stdout.flush()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
