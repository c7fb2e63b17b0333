"""What the JSON API takes and returns.

The input schemas state every limit the services enforce (lengths, counts, the
patterns of ``faq.fields``), read from the settings when the API is built, so that
the OpenAPI document says exactly what is accepted.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from ninja import Field, Schema
from pydantic import BaseModel, BeforeValidator, ConfigDict

from faq.fields import NO_NUL, NONBLANK, SLUG, WEB_URL_OR_EMPTY
from faq.importers.rows import FIELD_LIMITS


def _whole(value: Any) -> Any:
    """JSON Schema's integer: 2 or 2.0, not "2" nor true."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _form_bool(value: Any) -> Any:
    """A form's boolean, as the OpenAPI document writes one: true or false."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


Whole = Annotated[int, BeforeValidator(_whole)]
# Constraints before the validator, or pydantic leaves them out of the JSON Schema.
Id = Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(_whole)]  # a database id
Offset = Annotated[int, Field(ge=0, le=2**31)]  # offset + limit fits any database
MinSize = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_whole)]
FormBool = Annotated[bool, BeforeValidator(_form_bool)]


class Body(Schema):
    """A JSON body: values of the declared JSON types only (no "1" for 1, no 0 for
    false), as the OpenAPI document says."""

    model_config = ConfigDict(strict=True)


# Texts: at most so many characters, never a NUL; a required one has a character
# that is not a space.
Question = Annotated[str, Field(max_length=FIELD_LIMITS["question"], pattern=NONBLANK)]
Answer = Annotated[str, Field(max_length=FIELD_LIMITS["answer"], pattern=NONBLANK)]
Title = Annotated[str, Field(max_length=FIELD_LIMITS["title"], pattern=NONBLANK)]
Text = Annotated[str, Field(max_length=1_000_000, pattern=NO_NUL)]
Category = Annotated[str, Field(max_length=FIELD_LIMITS["category"], pattern=NO_NUL)]
ExternalId = Annotated[
    str, Field(max_length=FIELD_LIMITS["external_id"], pattern=NO_NUL)
]
Url = Annotated[str, Field(max_length=FIELD_LIMITS["url"], pattern=WEB_URL_OR_EMPTY)]


class SearchParams(Schema):
    q: str = Field(
        ...,
        min_length=1,
        max_length=settings.SEARCH_MAX_QUERY_LENGTH,
        pattern=NONBLANK,
        description="The question.",
    )
    collection: str | None = Field(
        None,
        pattern=NO_NUL,
        max_length=100,
        description="A collection's slug; all if empty.",
    )
    kind: Literal["faq", "document"] | None = None
    category: str | None = Field(None, pattern=NO_NUL, max_length=100)
    k: int = Field(
        10, ge=1, le=settings.SEARCH_MAX_RESULTS, description="How many results."
    )
    offset: int = Field(
        0,
        ge=0,
        le=settings.SEARCH_MAX_OFFSET,
        description="Results to skip: page n of k results starts at (n - 1) * k.",
    )
    min_score: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Drop results whose best chunk's cosine similarity to the query "
        "is below this. The same scale in every mode.",
    )
    mode: Literal["hybrid", "dense", "keyword"] | None = Field(
        None, description="hybrid (the default), dense (meaning) or keyword (BM25)."
    )
    fusion: Literal["boost", "relative", "rrf", "distribution"] | None = Field(
        None, description="How hybrid fuses the legs; the default is a setting."
    )
    weight: float | None = Field(
        None, ge=0, le=1, description="The keyword leg's weight in hybrid fusion."
    )
    explain: bool = Field(False, description="Say how each fused score was computed.")
    facets: bool = Field(
        False,
        description="Count the results of each kind and category too (each counted "
        "with the other filter applied, not its own).",
    )
    cosines: bool = Field(
        False,
        description="Keyword mode: each result's cosine too, and so whether an "
        "answer is confident, at the cost of embedding the query (min_score asks "
        "for them as well). Without, they are null. The other modes always have "
        "them.",
    )


class SuggestParams(Schema):
    q: str = Field(
        ...,
        max_length=settings.SEARCH_MAX_QUERY_LENGTH,
        pattern=NO_NUL,
        description="What the visitor typed so far (nothing is suggested under 2 "
        "characters).",
    )
    collection: str | None = Field(
        None, pattern=NO_NUL, max_length=100, description="A collection's slug."
    )
    k: int = Field(8, ge=1, le=20, description="How many suggestions at most.")


class Suggestion(Schema):
    text: str
    source: Literal["query", "question"] = Field(
        ...,
        description="query: others searched it and found a confident answer; "
        "question: one of the collection's FAQ questions.",
    )


class SuggestOut(Schema):
    suggestions: list[Suggestion]


class SearchHit(BaseModel):
    """A plain pydantic model, not a ``Schema``: a search validates ten or more of
    these from dicts, and ``Schema`` wraps each in a ``DjangoGetter`` (for reading
    attributes off model instances), which made validating a response 7× slower."""

    kind: str
    id: int
    title: str
    answer: str
    snippet: str = Field(..., description="The passage that matches best, plain text.")
    snippet_html: str = Field(
        ..., description="The snippet HTML-escaped, with query words in <mark>."
    )
    matched: str = Field(
        ...,
        description="The best chunk's field: question, answer, "
        "body, or 'page N' of a PDF; 'pinned' for a pinned answer the search "
        "did not find itself.",
    )
    pinned: bool = Field(
        False, description="An editor pinned this answer for the query (first)."
    )
    url: str
    category: str
    collection: str
    score: float = Field(
        ...,
        description="What the mode ranks by: cosine (dense), "
        "BM25 (keyword) or the fused score (hybrid).",
    )
    cosine: float | None = Field(
        ...,
        description="Cosine similarity of the best chunk; null in keyword mode "
        "without cosines=true.",
    )
    dense_rank: int | None
    keyword_score: float | None = Field(..., description="BM25 of the best chunk.")
    keyword_rank: int | None
    explanation: str | None


class SearchOut(Schema):
    query: str
    mode: str
    fusion: str | None
    took_ms: float
    confident: bool | None = Field(
        ...,
        description="Does the best result clear the collection's confidence "
        "threshold? Null when the results have no cosines (keyword mode).",
    )
    total: int = Field(
        ...,
        description="Results to page through: the items among the nearest chunks "
        "each leg was asked for (SEARCH_CANDIDATES, more for a deep page).",
    )
    offset: int = Field(..., description="Results skipped before these.")
    facets: dict[str, dict[str, int]] | None = Field(
        ..., description="With facets=true: {kind: {faq: n, ...}, category: {...}}."
    )
    contact_url: str | None = Field(
        ...,
        description="With no confident answer: where to ask (the collection's "
        "contact page), if it has one.",
    )
    search_id: str | None = Field(
        ...,
        description="This search's id, for POST /api/feedback and /api/clicks "
        "about its results (null when searches are not logged).",
    )
    results: list[SearchHit]


class ShownIn(Body):
    search_id: str = Field(
        ..., pattern=r"^[A-Za-z0-9_-]{16}$", description="The search's search_id."
    )
    position: Whole = Field(
        ...,
        ge=1,
        le=settings.SEARCH_MAX_OFFSET + settings.SEARCH_MAX_RESULTS,
        description="Where the result was: 1 for the first (offset included).",
    )
    kind: Literal["faq", "document"]
    id: Id


class FeedbackIn(ShownIn):
    helpful: bool = Field(..., description="Did this answer the question?")
    reason: Literal["", "not_related", "not_answered", "outdated"] = Field(
        "",
        description="With helpful false, optionally why: not related to the "
        "question, related but did not answer it, or out of date.",
    )


class Recorded(Schema):
    recorded: bool = Field(
        True,
        description="Queued for the log (written in the background; one for a "
        "search that was never logged is dropped).",
    )


class Error(Schema):
    detail: str = Field(..., description="What went wrong, for a person to read.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="With 422: each field that did not match the schema."
    )


class CollectionIn(Body):
    name: str = Field(..., min_length=1, max_length=200, pattern=NO_NUL)
    slug: str = Field(..., pattern=SLUG, max_length=100)
    description: str = Field("", max_length=10_000, pattern=NO_NUL)
    contact_url: Url = ""


class CollectionOut(Schema):
    slug: str
    name: str
    description: str
    contact_url: str


class FaqIn(Body):
    question: Question
    answer: Answer
    category: Category = ""
    published: bool = True
    external_id: ExternalId = ""
    url: Url = ""


class FaqPatch(Body):
    question: Question | None = None
    answer: Answer | None = None
    category: Category | None = None
    published: bool | None = None
    external_id: ExternalId | None = None
    url: Url | None = None


class FaqOut(Schema):
    id: int
    collection: str = Field(..., alias="collection.slug")
    question: str
    answer: str
    category: str
    published: bool
    external_id: str
    url: str
    embedding_status: str


class DocumentIn(Body):
    title: Title
    body: Text
    category: Category = ""
    published: bool = True
    external_id: ExternalId = ""
    url: Url = ""


class DocumentPatch(Body):
    title: Title | None = None
    body: Text | None = None
    category: Category | None = None
    published: bool | None = None
    external_id: ExternalId | None = None
    url: Url | None = None


class DocumentOut(Schema):
    id: int
    collection: str = Field(..., alias="collection.slug")
    title: str
    body: str
    category: str
    published: bool
    external_id: str
    url: str
    embedding_status: str


class PageParams(Schema):
    limit: int = Field(50, ge=1, le=500)
    offset: Offset = 0


class FaqPage(Schema):
    count: int
    items: list[FaqOut]


class DocumentPage(Schema):
    count: int
    items: list[DocumentOut]


class UploadOut(Schema):
    id: int
    collection: str
    status: str
    files: list[str]
    rows_parsed: int
    items_to_write: int
    items_written: int
    chunks_total: int
    chunks_embedded: int
    chunks_failed: int
    finished: bool
    error: str
    report: dict[str, Any]


class FaqRow(FaqIn):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["faq"] = "faq"


class DocumentRow(DocumentIn):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["document"]


class BulkIn(Body):
    items: list[FaqRow | DocumentRow] = Field(
        ...,
        max_length=settings.BULK_MAX_ITEMS,
        description="FAQs ({question, answer, ...}) or documents ({kind: "
        "'document', title, body, ...}); each matched to a stored item by its "
        "external id, else its question or title.",
    )
    skip_invalid: bool = False


class RowProblem(Schema):
    source: str
    line: int
    message: str


class ImportOut(Schema):
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: list[RowProblem]
    written: bool


class ExportParams(Schema):
    format: Literal["jsonl", "csv"] = "jsonl"
    kind: Literal["faq", "document"] = Field(
        "faq", description="CSV only: FAQs and documents have different columns."
    )


ClusterText = Annotated[
    str, Field(max_length=settings.CLUSTER_MAX_TEXT_LENGTH, pattern=NONBLANK)
]
PostedText = Annotated[
    str, Field(max_length=settings.SIMILARITY_MAX_TEXT_LENGTH, pattern=NONBLANK)
]


class ClustersIn(Body):
    texts: list[ClusterText] = Field(
        ...,
        min_length=1,
        max_length=settings.CLUSTER_MAX_TEXTS,
        description="At most CLUSTER_MAX_TEXTS texts.",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=10,
        description="Ward merge distance on unit vectors: lower gives more, "
        "tighter topics. Default CLUSTER_THRESHOLD (1.4).",
    )
    min_size: MinSize | None = Field(
        None,
        description="Smaller groups are unclustered. Default CLUSTER_MIN_SIZE (2).",
    )


class ClusterTopic(Schema):
    size: int
    labels: list[str] = Field(..., description="Keywords, most telling first.")
    representatives: list[int] = Field(
        ..., description="Indexes of the texts nearest the topic's centre."
    )
    members: list[int] = Field(..., description="Indexes into texts, ascending.")


class ClustersOut(Schema):
    model: str
    threshold: float
    min_size: int
    topics: list[ClusterTopic] = Field(..., description="Largest first.")
    unclustered: list[int] = Field(
        ..., description="Indexes of texts in no topic (groups below min_size)."
    )


class TextsSimilarityIn(Body):
    """One text, compared with each of ``texts``."""

    model_config = ConfigDict(extra="forbid")
    text: PostedText
    texts: list[PostedText] = Field(
        ..., min_length=1, max_length=settings.SIMILARITY_MAX_TEXTS
    )


class PairsSimilarityIn(Body):
    """Pairs of texts, each scored on its own."""

    model_config = ConfigDict(extra="forbid")
    pairs: list[Annotated[list[PostedText], Field(min_length=2, max_length=2)]] = Field(
        ..., min_length=1, max_length=settings.SIMILARITY_MAX_TEXTS
    )


SimilarityIn = TextsSimilarityIn | PairsSimilarityIn


class SimilarityOut(Schema):
    model: str
    scores: list[float] = Field(
        ..., description="Cosine similarities, in the order of texts or pairs."
    )


class ParaphrasesIn(Body):
    texts: list[PostedText] = Field(
        ..., min_length=1, max_length=settings.PARAPHRASE_MAX_TEXTS
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="Least cosine; default DUPLICATE_THRESHOLD."
    )
    top_k: Whole = Field(10, ge=1, le=100, description="Most pairs per text.")
    limit: Whole = Field(1000, ge=1, le=10_000, description="Most pairs returned.")


class ParaphrasePair(Schema):
    first: int = Field(..., description="Index of a text in texts (the lower).")
    second: int
    score: float


class ParaphrasesOut(Schema):
    model: str
    threshold: float
    count: int = Field(..., description="Pairs found before the limit.")
    pairs: list[ParaphrasePair]


class SimilarParams(Schema):
    kind: Literal["faq", "document"] = Field(
        "faq", description="The kind of the item whose id is in the path."
    )
    k: int = Field(5, ge=1, le=50)
    min_score: float | None = Field(None, ge=-1, le=1, description="Least cosine.")


class SimilarItem(Schema):
    kind: str
    id: int
    title: str
    url: str
    score: float = Field(
        ..., description="Cosine of the item's vector to this item's best chunk."
    )
    matched: str = Field(..., description="That chunk's field.")


class SimilarOut(Schema):
    kind: str
    id: int
    title: str
    results: list[SimilarItem]


class DuplicatesParams(Schema):
    kind: Literal["faq", "document"] = "faq"
    threshold: float | None = Field(
        None, ge=0, le=1, description="Least cosine; default DUPLICATE_THRESHOLD."
    )
    limit: int = Field(50, ge=1, le=500)
    offset: Offset = 0


class ItemRef(Schema):
    id: int
    title: str
    url: str


class DuplicatePairOut(Schema):
    first: ItemRef
    second: ItemRef
    score: float


class DuplicatesOut(Schema):
    collection: str
    kind: str
    threshold: float
    count: int = Field(..., description="Pairs above the threshold in all.")
    pairs: list[DuplicatePairOut]


class JobOut(Schema):
    id: int
    kind: Literal["similarity", "paraphrases", "clusters"]
    status: Literal["queued", "running", "done", "failed"]
    progress: float = Field(..., description="Share of the texts embedded, 0 to 1.")
    created_at: datetime
    finished_at: datetime | None
    error: str
    result: dict[str, Any] | None = Field(
        ..., description="Once done: what the endpoint of its kind answers."
    )
