"""Import help content from files: check every row, report every problem, write all
or nothing.

``formats`` turns a file's bytes into rows (or refuses the file), ``rows`` checks
each row, ``writer`` creates or updates the items in one transaction.
"""

from faq.importers.files import import_path
from faq.importers.formats import Limits, parse_file
from faq.importers.rows import ImportRefused, Row, RowError, parse_row
from faq.importers.writer import ImportReport, import_rows

__all__ = [
    "ImportRefused",
    "ImportReport",
    "Limits",
    "Row",
    "RowError",
    "import_path",
    "import_rows",
    "parse_file",
    "parse_row",
]
