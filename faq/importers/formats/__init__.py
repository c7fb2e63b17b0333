"""File formats: bytes in, rows and row errors out, or the whole file refused.

One module per format family: ``delimited`` (CSV, TSV), ``jsondata`` (JSON,
JSON Lines, BEIR corpus.jsonl), ``markdown``, ``plaintext``, ``html``, ``pdf``,
``word`` (.docx) and ``archive`` (ZIP of any of these). ``sections`` makes FAQs or
a document of headed text (markdown, Word), ``detect`` picks a format by content
and name, ``encoding`` turns bytes into text, and ``dispatch.parse_file`` is the
way in.
"""

from faq.importers.formats.base import Limits
from faq.importers.formats.dispatch import parse_file

__all__ = ["Limits", "parse_file"]
