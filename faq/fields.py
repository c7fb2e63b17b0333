"""The shapes of text the content takes, in one place: the models, the importer and
the API's schemas check them with these same patterns, so that what the OpenAPI
document allows is what is stored, and what it refuses is refused everywhere.

A stored text has no NUL character (PostgreSQL's text cannot hold one); a required
one has a character that is not a space; a link is a web address (``http`` or
``https``: never ``javascript:``), without spaces or control characters (templates
escape the rest, quotes and angle brackets included).
"""

import re

from django.core.exceptions import ValidationError

# The characters Python's str.strip() and str.split() take for spaces, spelt out:
# regex engines disagree on what \s means (Python's includes \x1c-\x1f, ECMA's
# and pydantic's do not), and the schema, pydantic and the services must agree.
SPACES = "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace())
NO_NUL = r"^[^\x00]*$"
NONBLANK = rf"^[^\x00]*[^\x00{SPACES}][^\x00]*$"
_URL_OFF = rf"\x00-\x1f\x7f{SPACES}"  # never in a link: control characters, spaces
WEB_URL = rf"^https?://[^{_URL_OFF}/?#]+(?:[/?#][^{_URL_OFF}]*)?$"
WEB_URL_OR_EMPTY = rf"^(?:{WEB_URL[1:-1]})?$"
SLUG = r"^[-a-zA-Z0-9_]+$"
URL_MESSAGE = "Enter a web address that starts with http:// or https://."

_WEB_URL = re.compile(WEB_URL)


def web_url(value: str) -> None:
    """Django's validator for ``WEB_URL`` (a function: migrations name it, rather
    than copy its pattern)."""
    if value and not _WEB_URL.search(value):
        raise ValidationError(URL_MESSAGE, code="invalid")
