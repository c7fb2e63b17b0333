from typing import Any, cast

from django import forms
from django.conf import settings
from django.urls import reverse

from faq.exceptions import ApplicationError
from faq.models import ITEMS, Collection, Feedback
from faq.searchlog import shown_check

PAGE_SIZE = 10  # results a page of the search page shows


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
    mode = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Best match (hybrid)"),
            ("dense", "By meaning"),
            ("keyword", "By keywords"),
        ],
    )
    min_score = forms.FloatField(
        required=False, min_value=-1, max_value=1, label="Minimum score"
    )
    page = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=settings.SEARCH_MAX_OFFSET // PAGE_SIZE + 1,
        widget=forms.HiddenInput,
    )

    def query(self) -> dict[str, Any]:
        """The cleaned form as ``SearchQuery``'s fields: a page is an offset."""
        asked = dict(self.cleaned_data)
        asked["offset"] = ((asked.pop("page") or 1) - 1) * PAGE_SIZE
        asked["facets"] = True  # the filters show how many each would leave
        return asked

    def counted(self, facets: dict[str, dict[str, int]]) -> None:
        """Each kind's and category's option labelled with its results."""
        for name in ("kind", "category"):
            field = cast(forms.ChoiceField, self.fields[name])
            counts = facets.get(name, {})
            choices = cast(list[tuple[str, str]], field.choices)
            field.choices = [
                (value, f"{label} ({counts.get(value, 0)})" if value else label)
                for value, label in choices
            ]

    def __init__(
        self,
        *args: object,
        collections: list[Collection],
        categories: list[str],
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        named = [(c.slug, c.name) for c in collections]
        self._choices("collection", [("", "All collections"), *named])
        self._choices("category", [("", "Any category"), *((c, c) for c in categories)])
        self.fields["q"].widget.attrs.update(
            maxlength=settings.SEARCH_MAX_QUERY_LENGTH,
            autofocus=True,
            placeholder="Ask a question…",
            # Suggestions as one types (htmx fills the datalist; without it, none).
            list="suggestions",
            autocomplete="off",
            **{
                "hx-get": reverse("faq:suggest"),
                "hx-trigger": "input changed delay:200ms",
                "hx-target": "#suggestions",
                "hx-include": "[name=collection]",
                "hx-sync": "this:replace",
            },
        )

    def _choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        cast(forms.ChoiceField, self.fields[name]).choices = choices


class FeedbackForm(forms.Form):
    """A vote on a result (yes, or no with an optional reason), or with ``click``
    a result opened: which search (its token), which result and where."""

    search = forms.CharField(max_length=32)
    position = forms.IntegerField(min_value=1)
    kind = forms.ChoiceField(choices=[(kind, kind) for kind in ITEMS])
    id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    helpful = forms.ChoiceField(
        choices=[("yes", "Yes"), ("no", "No")],
        label="Did this answer your question?",
    )
    reason = forms.ChoiceField(
        required=False,
        choices=Feedback.Reason.choices,
        widget=forms.RadioSelect,
        label="What was wrong with it?",
    )

    def __init__(self, *args: Any, click: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if click:
            del self.fields["helpful"], self.fields["reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            data["shown"] = shown_check(
                data["search"], data["position"], data["kind"], data["id"]
            )
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        if "helpful" in data:
            data["helpful"] = data["helpful"] == "yes"
        return data


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    collection = forms.ModelChoiceField(queryset=Collection.objects.all())
    uploads = MultipleFileField(
        label="Files",
        help_text="CSV, TSV, JSON, JSON Lines, BEIR corpus.jsonl, Markdown, text, "
        "HTML, PDF, Word (.docx), or a ZIP of these.",
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import the valid rows and report the rest",
        help_text="Otherwise a file with any invalid row is refused whole.",
    )

    def clean_uploads(self) -> list[Any]:
        from faq.uploads import upload_check_sizes

        files = self.cleaned_data["uploads"]
        try:
            upload_check_sizes([(f.name, f.size) for f in files])
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
        return files
