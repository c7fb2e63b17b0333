from typing import cast

from django import forms
from django.conf import settings

from faq.models import Collection


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=2000, label="Question")
    collection = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(
        required=False,
        choices=[
            ("", "FAQs and documents"),
            ("faq", "FAQs"),
            ("document", "Documents"),
        ],
    )
    category = forms.ChoiceField(required=False)
    min_score = forms.FloatField(
        required=False, min_value=-1, max_value=1, label="Minimum score"
    )

    def __init__(self, *args: object, categories: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        collections = [(c.slug, c.name) for c in Collection.objects.all()]
        self._choices("collection", [("", "All collections"), *collections])
        self._choices("category", [("", "Any category"), *((c, c) for c in categories)])
        self.fields["q"].widget.attrs.update(
            maxlength=settings.SEARCH_MAX_QUERY_LENGTH,
            autofocus=True,
            placeholder="Ask a question…",
        )

    def _choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        cast(forms.ChoiceField, self.fields[name]).choices = choices
