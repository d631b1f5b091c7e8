"""Annotators: a small protocol (describe / categorize / describe_and_categorize) and its Gemini implementation."""

from labeling.annotators.base import Annotation, Annotator, ResponseFailure, RetryableError, Usage
from labeling.annotators.gemini import GeminiAnnotator
from labeling.annotators.prompts import PROMPT_VERSION

__all__ = ["PROMPT_VERSION", "Annotation", "Annotator", "GeminiAnnotator", "ResponseFailure", "RetryableError",
           "Usage"]
