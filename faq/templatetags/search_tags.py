from django import template
from django.utils.safestring import SafeString

from faq.snippets import highlight as highlight_terms

register = template.Library()


@register.filter
def highlight(text: str, terms: list[str]) -> SafeString:
    """{{ text|highlight:found.terms }}: escaped, with the query's words marked."""
    return highlight_terms(text or "", terms or [])


@register.filter
def percent(share: float) -> str:
    """{{ 0.125|percent }}: "12.5 %"."""
    return f"{share * 100:.1f} %"
