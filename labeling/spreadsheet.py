"""CSV cells that a spreadsheet would run as formulas: neutralised on export, restored on import.

Excel, LibreOffice and Google Sheets treat a cell starting with = + - @ (or a tab or carriage return before
one) as a formula, so an image name or a model description could run as one when a CSV export is opened
(CSV injection). Exports prefix such cells with a single quote, which spreadsheets show as text.

The rule is reversible, so an exported CSV imports back losslessly: a cell is neutralised when it matches
`'*` followed by a trigger character (one more quote is added), and an imported cell matching `'+` followed by a
trigger loses one quote. The only value that does not survive is a cell of a seed CSV that is not one of our
exports and really starts with a quote followed by a trigger character (it loses that quote).
"""

from __future__ import annotations

import re

# Shared with the SQL of labeling/store/analytics.py (DuckDB's RE2 reads the same pattern).
FORMULA_PATTERN = r"^'*[=+\-@\t\r]"
_NEUTRALISED = re.compile(r"^'+[=+\-@\t\r]")
_FORMULA = re.compile(FORMULA_PATTERN)


def neutralise_cell(value: str) -> str:
    """The cell as written to a CSV export: a leading quote added where a spreadsheet would see a formula."""
    return "'" + value if _FORMULA.match(value) else value


def restore_cell(value: str) -> str:
    """The value an exported cell stood for: the quote `neutralise_cell` added is taken off again."""
    return value[1:] if _NEUTRALISED.match(value) else value
