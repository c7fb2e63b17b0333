"""HTML: the page's main text, without navigation, header, footer, scripts or styles.

trafilatura finds the main content the way reader views do; the title comes from
the page's ``<title>`` or first ``<h1>`` (trafilatura's metadata reads both).
"""

from typing import Any

from faq.importers.formats.base import (
    Context,
    Parsed,
    one_document,
    refused,
    size,
    stem,
)


def parse(name: str, text: str, ctx: Context) -> Parsed:
    """One document from a web page."""
    import trafilatura  # a heavy import, needed only for HTML

    limit = ctx.limits.max_html_bytes
    if len(text) > limit:
        raise refused(
            name,
            f"is a web page of about {size(len(text))}, more than the limit of "
            f"{size(limit)} for HTML; save its text as .txt or .md instead",
        )

    page: Any = trafilatura.bare_extraction(
        text,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
    )
    body = (page.text or "").strip() if page else ""
    if not body:
        raise refused(
            name, "has no readable text (only navigation, scripts, styles or markup)"
        )
    title = (page.title or "").strip() or stem(name)
    first, _, rest = body.partition("\n")
    if first.strip() == title and rest.strip():
        body = rest.strip()  # the heading repeats the title
    return one_document(name, title=title, body=body)
