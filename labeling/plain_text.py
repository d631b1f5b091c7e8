"""Outside text made safe to show as plain text: bidirectional controls become visible code points.

A right-to-left override in a file, dataset or category name would reverse the rest of the line it is shown
in (a gallery tile, a chart legend); shown as `<U+202E>` it reads as what it is.
"""

from __future__ import annotations

import re
from typing import Any

BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: Any) -> str:
    """`text` with each bidirectional control shown as its code point, e.g. `<U+202E>`."""
    return BIDI_CONTROLS.sub(lambda found: f"<U+{ord(found.group()):04X}>", str(text))
