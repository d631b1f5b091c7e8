"""A local fake of the Gemini API that the real google-genai client talks to over HTTP.

Used by tests, benchmarks and the offline demo::

    with FakeGemini(rpm_quota=600) as fake:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url,
                                                                          api_version="v1beta"))
        fake.inject("daily_quota")       # the next request gets the real requests-per-day 429
        ...

It is as strict as the real API: `/v1/` refuses the fields only `v1beta` has (systemInstruction,
responseSchema, thinkingConfig, ...), and thinking settings a model family does not take are refused.
Every answer shape in `FAULT_KINDS` reproduces a body Google was seen to send.

It also keeps a Files API (resumable uploads, 48 h expiry) and Batch Mode (`batchGenerateContent`, states on
a controllable clock: `fake.advance(seconds)`); `BATCH_FAULT_KINDS` lists their faults.

Run it on its own with `python -m labeling.fake_gemini --port 8765 [--fault KIND[:RATE]] [--log FILE]`.
"""

from labeling.fake_gemini.answers import OFF_LIST_VALUE
from labeling.fake_gemini.batch_faults import BATCH_FAULT_KINDS
from labeling.fake_gemini.clock import FakeClock
from labeling.fake_gemini.faults import FAULT_KINDS
from labeling.fake_gemini.server import FakeGemini, RequestRecord
from labeling.fake_gemini.service import ApiCall
from labeling.fake_gemini.vision import ImageFacts
from labeling.fake_gemini.wire import GenerateRequest

__all__ = [
    "BATCH_FAULT_KINDS",
    "FAULT_KINDS",
    "OFF_LIST_VALUE",
    "ApiCall",
    "FakeClock",
    "FakeGemini",
    "GenerateRequest",
    "ImageFacts",
    "RequestRecord",
]
