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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# Shared with the SQL of labeling/store/analytics.py (DuckDB's RE2 reads the same pattern). The fullwidth
# forms count too: spreadsheets fold ＝ ＋ － ＠ to their ASCII twins when they parse a cell.
_TRIGGERS = r"=+\-@\t\r" + "\uff1d\uff0b\uff0d\uff20"  # regex escapes for tab and CR; the fullwidth as is
FORMULA_PATTERN = f"^'*[{_TRIGGERS}]"
_NEUTRALISED = re.compile(f"^'+[{_TRIGGERS}]")
_FORMULA = re.compile(FORMULA_PATTERN)


def neutralise_cell(value: str) -> str:
    """The cell as written to a CSV export: a leading quote added where a spreadsheet would see a formula."""
    return "'" + value if _FORMULA.match(value) else value


def restore_cell(value: str) -> str:
    """The value an exported cell stood for: the quote `neutralise_cell` added is taken off again."""
    return value[1:] if _NEUTRALISED.match(value) else value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells are neutralised: what every CSV the product writes or offers is made from."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: neutralise_cell(v) if isinstance(v, str) else v)
    return out


def frame_csv(frame: pd.DataFrame) -> bytes:
    """The frame as formula-safe UTF-8 CSV (header row, no index)."""
    return safe_frame(frame).to_csv(index=False).encode("utf-8")


def safe_rows(rows: Iterable[Sequence[str]]) -> list[list[str]]:
    """Rows of cells for `csv.writer`, neutralised."""
    return [[neutralise_cell(cell) if isinstance(cell, str) else cell for cell in row] for row in rows]
