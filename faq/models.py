"""Collections of help content: FAQs and documents."""

import functools
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.urls import get_script_prefix, reverse

from embeddings.sources import Embeddable, Passage, register
from faq.fields import web_url


class Collection(models.Model):
    """A named knowledge base; its items are searched together."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    contact_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[web_url],
        help_text="A web page where visitors can ask when no answer is a confident "
        "one (a contact form): the search page links to it.",
    )
    confidence_threshold = models.FloatField(
        default=0.45,
        help_text="Below this cosine similarity the best answer is not a confident "
        "one: the search page says so and shows the nearest results.",
    )
    private = models.BooleanField(
        default=False,
        help_text="Searched only by signed-in users allowed to search private "
        "collections and by API keys of this collection (or of every collection): "
        "never in anonymous searches, suggestions or similar items.",
    )
    synonyms = models.TextField(
        blank=True,
        help_text="Words or phrases that mean the same here, one group per line, "
        "comma separated (login, log in, sign in): a query holding one of a group "
        "also matches the others by keyword.",
    )
    pinned = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Pinned answers it has: a search looks for them only if any.",
    )
    embedding_model = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        help_text="The model this collection's vectors came from (set on first "
        "embedding; another model is refused until the collection is re-embedded).",
    )
    embedding_dimension = models.PositiveIntegerField(
        null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("search_private", "Can search private collections")]

    def __str__(self) -> str:
        return self.name

    @property
    def partition(self) -> str:
        return partition_of(self.pk)


def partition_of(collection_id: int) -> str:
    return f"collection-{collection_id}"


def collection_of(partition: str) -> int | None:
    """The collection whose partition this is (``partition_of``); None: not one."""
    head, _, number = partition.partition("collection-")
    return int(number) if not head and number.isdigit() else None


def item_url(kind: str, pk: int) -> str:
    """``reverse("faq:item", args=[kind, pk])`` at a tenth of the cost: a search
    result has a URL each, and reversing took 30 µs a result."""
    head, tail = _item_url_parts(kind, get_script_prefix())
    return f"{head}{pk}{tail}"


@functools.cache
def _item_url_parts(kind: str, script_prefix: str) -> tuple[str, str]:
    """The item page's URL for ``kind`` split where its id goes (the prefix is
    part of the key: ``reverse`` puts it in front)."""
    head, _, tail = reverse("faq:item", args=[kind, _ID]).rpartition(str(_ID))
    return head, tail


_ID = 987654321  # a placeholder id, distinct from anything else in the URL


class Item(Embeddable, models.Model):
    """What FAQs and documents share."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    published = models.BooleanField(default=True)
    external_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="The item's id in the system it came from.",
    )
    url = models.CharField(max_length=500, blank=True, validators=[web_url])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    kind: str

    class Meta:
        abstract = True
        ordering = ["pk"]

    def get_absolute_url(self) -> str:
        return self.url or item_url(self.kind, self.pk)

    def embedding_partition(self) -> str:
        return partition_of(self.collection_id)

    def embedding_enabled(self) -> bool:
        return self.published


@register
class Faq(Item):
    question = models.CharField(max_length=1000)
    answer = models.TextField()

    kind = "faq"

    class Meta(Item.Meta):
        verbose_name = "FAQ"
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "external_id"],
                condition=~models.Q(external_id=""),
                name="faq_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.question

    @property
    def title(self) -> str:
        return self.question

    def clean(self) -> None:
        if not self.question.strip() or not self.answer.strip():
            raise ValidationError("A FAQ needs a question and an answer.")

    def embedding_passages(self) -> list[Passage]:
        # The question alone is the strongest evidence for a paraphrase; the answer,
        # led by its question, catches queries that match what the answer says.
        return [
            Passage("question", self.question),
            Passage("answer", self.answer, prefix=self.question),
        ]


@register
class Document(Item):
    title = models.CharField(max_length=500)
    body = models.TextField(blank=True)  # a title alone is a document (clean)

    kind = "document"

    class Meta(Item.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "external_id"],
                condition=~models.Q(external_id=""),
                name="document_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if not self.title.strip() and not self.body.strip():
            raise ValidationError("A document needs a title or a body.")

    def embedding_passages(self) -> list[Passage]:
        pages = self.body.split("\f")  # PDFs keep a form feed between pages
        if len(pages) == 1:
            return [Passage("body", self.body, prefix=self.title)]
        return [
            Passage(f"page {number}", page, prefix=self.title)
            for number, page in enumerate(pages, start=1)
            if page.strip()
        ]


# Each kind of item by its name in URLs, imports and the API.
ITEMS: dict[str, type[Item]] = {model.kind: model for model in (Faq, Document)}


class ApiKey(models.Model):
    """A key for programs. Only its hash is stored; the key is shown once."""

    class Permission(models.TextChoices):
        READ = "read"
        WRITE = "write"
        EMBEDDINGS = "embeddings"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    collection = models.ForeignKey(
        Collection,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="Empty: every collection.",
    )
    permission = models.CharField(
        max_length=10, choices=Permission.choices, default=Permission.READ
    )
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    requests_count = models.PositiveBigIntegerField(default=0, editable=False)
    tokens_used = models.PositiveBigIntegerField(
        default=0, editable=False, help_text="Tokens embedded through /v1/embeddings."
    )

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ImportJob(models.Model):
    """An upload of one or more files: parsed, previewed, then imported in one go."""

    class Status(models.TextChoices):
        PARSING = "parsing"
        READY = "ready", "ready to import"
        IMPORTING = "importing"
        DONE = "done"
        REFUSED = "refused"
        FAILED = "failed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PARSING
    )
    skip_invalid = models.BooleanField(
        default=False, help_text="Import the valid rows and report the rest."
    )
    confirm = models.BooleanField(
        default=False, help_text="Import as soon as the files are read (no preview)."
    )
    rows_parsed = models.PositiveIntegerField(default=0)
    # Deliveries of its current step (parsing, importing) that began: a file that
    # stops the worker every time fails the job at UPLOAD_MAX_ATTEMPTS.
    attempts = models.PositiveSmallIntegerField(default=0)
    items_written = models.PositiveIntegerField(default=0)
    chunks_after = models.PositiveBigIntegerField(
        default=0, help_text="Chunks above this id were made by this import."
    )
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "upload"

    def __str__(self) -> str:
        names = ", ".join(f.name for f in self.files.all()[:3])
        return f"Upload {self.pk} ({names})"


class ImportFile(models.Model):
    """An uploaded file's bytes, kept in the database so any worker can read them."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


class DuplicatePair(models.Model):
    """Two FAQs whose questions mean the same thing, for staff to merge or dismiss."""

    class Status(models.TextChoices):
        OPEN = "open"
        MERGED = "merged"
        DISMISSED = "dismissed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE)
    first = models.ForeignKey(Faq, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Faq, on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-similarity"]
        verbose_name = "near-duplicate question"
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="duplicate_once"),
            models.CheckConstraint(
                condition=models.Q(first__lt=models.F("second")),
                name="duplicate_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_id} ~ {self.second_id} ({self.similarity:.3f})"


class SearchLog(models.Model):
    """A query someone searched for: on the search page (people) or through the
    JSON API (programs, by key), with what it found. Visitors' votes and clicks
    on its results refer to it by ``token``."""

    class Source(models.TextChoices):
        PAGE = "page", "search page"
        API = "api", "JSON API"

    token = models.CharField(max_length=24, db_index=True, blank=True)
    query = models.CharField(max_length=500)
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(max_length=4, choices=Source.choices, default=Source.PAGE)
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL
    )
    mode = models.CharField(max_length=10, blank=True)
    results = models.PositiveIntegerField(default=0)
    top_score = models.FloatField(null=True, blank=True)
    confident = models.BooleanField(
        null=True,
        default=False,
        help_text="Empty: no cosines to judge by (a keyword search through the API "
        "that asked for none).",
    )
    private = models.BooleanField(
        default=False, help_text="It searched private collections too."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "search"

    def __str__(self) -> str:
        return self.query


class Feedback(models.Model):
    """A visitor's answer to "Did this answer your question?" for one result of a
    search: one per search and result (a second vote replaces the first)."""

    class Reason(models.TextChoices):
        NOT_RELATED = "not_related", "Not related to my question"
        NOT_ANSWERED = "not_answered", "Related, but did not answer it"
        OUTDATED = "outdated", "Out of date"

    search = models.ForeignKey(SearchLog, on_delete=models.CASCADE)
    kind = models.CharField(max_length=10)
    item_id = models.PositiveBigIntegerField()
    position = models.PositiveIntegerField(help_text="1 for the first result.")
    helpful = models.BooleanField()
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(
                fields=["search", "kind", "item_id"], name="feedback_once_per_result"
            )
        ]

    def __str__(self) -> str:
        return f"{'yes' if self.helpful else 'no'}: {self.kind} {self.item_id}"


class Click(models.Model):
    """A visitor opened a result of a search."""

    search = models.ForeignKey(SearchLog, on_delete=models.CASCADE)
    kind = models.CharField(max_length=10)
    item_id = models.PositiveBigIntegerField()
    position = models.PositiveIntegerField(help_text="1 for the first result.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.item_id} at {self.position}"


class PinnedAnswer(models.Model):
    """An FAQ shown first for a query, and for queries that mean the same (their
    cosine to it at least ``similarity``)."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE)
    query = models.CharField(max_length=500)
    faq = models.ForeignKey(Faq, on_delete=models.CASCADE, verbose_name="FAQ")
    similarity = models.FloatField(
        default=0.9,
        help_text="Queries at least this close in meaning (cosine) get the pin "
        "too; 1 for the exact query only.",
    )

    class Meta:
        verbose_name = "pinned answer"

    def __str__(self) -> str:
        return f"{self.query} → {self.faq_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        pins_count(self.collection_id)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        pins_count(self.collection_id)
        return deleted

    def clean(self) -> None:
        if not 0 < self.similarity <= 1:
            raise ValidationError({"similarity": "A cosine above 0, at most 1."})
        if (
            self.faq_id
            and self.collection_id
            and (self.faq.collection_id != self.collection_id)
        ):
            raise ValidationError({"faq": "Pin an FAQ of this collection."})


def pins_count(collection_id: int) -> None:
    """Keep ``Collection.pinned`` true to the pins (deleting an FAQ deletes its
    pins through the database's cascade: ``faq.curation`` checks each anyway)."""
    count = PinnedAnswer.objects.filter(collection_id=collection_id).count()
    Collection.objects.filter(pk=collection_id).update(pinned=count)


class AnalysisJob(models.Model):
    """Texts posted with an API key to be compared, mined for paraphrases or grouped
    into topics by a worker: more model work than a request may do while it waits.
    Its ``result`` is what the endpoint of its kind answers."""

    class Kind(models.TextChoices):
        SIMILARITY = "similarity"
        PARAPHRASES = "paraphrases"
        CLUSTERS = "clusters"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE)
    params = models.JSONField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    progress = models.FloatField(default=0.0, help_text="Share of the texts embedded.")
    attempts = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "analysis job"

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"
