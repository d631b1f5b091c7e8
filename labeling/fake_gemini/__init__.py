"""A local fake of the Gemini API that the real google-genai client talks to over HTTP.

Used by tests, benchmarks and the offline demo::

    with FakeGemini(rpm_quota=600) as fake:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url))
        fake.inject("http_503")          # the next request is answered 503 UNAVAILABLE
        ...

Run it on its own with `python -m labeling.fake_gemini --port 8765`.
"""

from labeling.fake_gemini.answers import OFF_LIST_VALUE
from labeling.fake_gemini.faults import FAULT_KINDS
from labeling.fake_gemini.server import FakeGemini, RequestRecord
from labeling.fake_gemini.vision import ImageFacts
from labeling.fake_gemini.wire import GenerateRequest

__all__ = ["FAULT_KINDS", "OFF_LIST_VALUE", "FakeGemini", "GenerateRequest", "ImageFacts", "RequestRecord"]
