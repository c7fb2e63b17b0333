"""The shapes of text the content takes, in one place: the models, the importer and
the API's schemas check them with these same patterns, so that what the OpenAPI
document allows is what is stored, and what it refuses is refused everywhere.

A stored text has no NUL character (PostgreSQL's text cannot hold one); a required
one has a character that is not a space; a link is a web address (``http`` or
``https``: never ``javascript:``), without spaces, quotes or angle brackets.
"""

from django.core.validators import RegexValidator

NO_NUL = r"^[^\x00]*$"
NONBLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
WEB_URL = r"^https?://[^\s\x00/?#\"'<>\\]+(?:[/?#][^\s\x00\"'<>\\]*)?$"
WEB_URL_OR_EMPTY = rf"^(?:{WEB_URL[1:-1]})?$"
SLUG = r"^[-a-zA-Z0-9_]+$"
URL_MESSAGE = "Enter a web address that starts with http:// or https://."

web_url = RegexValidator(WEB_URL, URL_MESSAGE)
