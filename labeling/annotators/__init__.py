"""Annotators: a small protocol (describe / categorize / describe_and_categorize / ask) and its providers.

Importing this package loads no SDK: `providers.create_annotator` loads a provider's module when it is used.
"""

from labeling.annotators.base import Annotation, Annotator, ResponseFailure, RetryableError, Usage
from labeling.annotators.prompts import PROMPT_VERSION
from labeling.annotators.providers import PROVIDERS, create_annotator, provider_for

__all__ = [
    "PROMPT_VERSION",
    "PROVIDERS",
    "Annotation",
    "Annotator",
    "ResponseFailure",
    "RetryableError",
    "Usage",
    "create_annotator",
    "provider_for",
]
