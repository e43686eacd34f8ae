"""The data file of SPEC §10: base configuration, branches and series, in YAML or JSON.

``parse_data_file`` checks the whole file and reports every problem at once, each
naming the item and the field (``series[2] 'east-yoga': field 'start_time': ...``),
so an operator fixes a file in one pass. Nothing here touches the database: what
only the database can answer (is a branch known, does a base configuration exist
yet) is checked by ``check_branches`` and the loader, inside the load transaction.

The package, in the order a file goes through it:

- ``reading``: the text read into Python values, within ``DataFileLimits`` (size,
  nesting, YAML aliases), with the reading rules that make a file mean what it
  looks like;
- ``schema``: every field declared once (pydantic), with its check;
- ``fields`` and ``values``: how a field is checked, and the checks;
- ``messages``: the problems in the operator's words;
- ``parsing``: the file checked as a whole.

Values a file may hold:

- Dates are YAML dates or ``YYYY-MM-DD`` strings in 1900-01-01..2200-12-31; a date
  with a time of day is refused. Date lists are de-duplicated and sorted.
- An integer literal too long for Python to convert, or outside its field's
  range, is reported as out of range (``cleanup_grace_days`` at most 36,500, so
  that ``end_date`` plus the grace is still a date).
- Text fields (and every other field given as text) must not contain control
  characters (Unicode category Cc: U+0000..U+001F, U+007F..U+009F; tab and
  newline included) or unpaired surrogates: SQLite would store them, PostgreSQL
  refuses NUL, and none of them belongs in a title, key, room or time.
"""

from seriesgen_pipeline.core.datafile.parsing import (
    check_branches,
    missing_base_fields,
    parse_data_file,
)
from seriesgen_pipeline.core.datafile.reading import DataFileLimits, file_too_large
from seriesgen_pipeline.core.datafile.schema import (
    BRANCH_FIELDS,
    REQUIRED_SERIES_FIELDS,
    SERIES_FIELDS,
    TOP_LEVEL_FIELDS,
    BranchEntry,
    DataFile,
    SeriesEntry,
)
from seriesgen_pipeline.core.limits import EARLIEST_DATE, LATEST_DATE

__all__ = [
    "BRANCH_FIELDS",
    "EARLIEST_DATE",
    "LATEST_DATE",
    "REQUIRED_SERIES_FIELDS",
    "SERIES_FIELDS",
    "TOP_LEVEL_FIELDS",
    "BranchEntry",
    "DataFile",
    "DataFileLimits",
    "SeriesEntry",
    "check_branches",
    "file_too_large",
    "missing_base_fields",
    "parse_data_file",
]
