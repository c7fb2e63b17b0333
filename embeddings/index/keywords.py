"""The keyword index: BM25 over chunk texts, one tantivy index per partition.

tantivy (a Rust engine in the Lucene mould) was chosen over a hand-written or
numpy BM25 because it updates in place (add and delete by chunk id), commits
atomically (readers see the old or the new segments, never half), and lets many
processes read while one writes. It lives beside the partition's vectors and is
changed under the same writer lock, with the same added and removed ids, so the
two legs always describe the same chunks.
"""

import functools
import hashlib
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embeddings.index.base import IndexCorrupt, KeywordHits

ANALYZER = "english"
WRITER_HEAP = 64 * 1024 * 1024


def analyzer() -> Any:
    """Lowercased words, Lucene's English stop words removed, Porter-stemmed: the
    analysis BM25 baselines (Anserini, bm25s) use."""
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("chunk_id", stored=True, indexed=True, fast=True)
    builder.add_text_field("text", stored=False, tokenizer_name=ANALYZER)
    return builder.build()


class TantivyKeywords:
    """A partition's keyword index (``KeywordIndex``), in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: Any = None

    @classmethod
    def open(cls, directory: Path) -> "TantivyKeywords | None":
        """The published keyword index in ``directory``, or None if there is none
        yet; IndexCorrupt when its files cannot be opened."""
        if not (directory / "meta.json").exists():
            return None
        found = cls(directory)
        try:
            found._open()
        except (ValueError, OSError) as error:  # tantivy's errors for damaged files
            raise IndexCorrupt(
                f"the keyword index cannot be opened ({error})"
            ) from error
        return found

    def _open(self) -> Any:
        import tantivy

        if self._index is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            index = tantivy.Index(_schema(), path=str(self.directory))
            index.register_tokenizer(ANALYZER, analyzer())
            self._index = index
        return self._index

    def __len__(self) -> int:
        """Documents it holds (one per chunk), as committed now."""
        if not (self.directory / "meta.json").exists():
            return 0
        index = self._open()
        index.reload()
        return int(index.searcher().num_docs)

    def apply(
        self,
        *,
        removed: Sequence[int] = (),
        added: Sequence[tuple[int, str]] = (),
        rebuild: bool = False,
    ) -> None:
        """Delete and add chunks in one commit. Call with the partition's writer
        lock.

        An added chunk is deleted first, so applying the same change twice (a
        writer that died between this commit and publishing its vectors) leaves
        one document per chunk. ``rebuild`` starts from an empty directory:
        whatever was there, damaged or not, is gone."""
        import tantivy

        if rebuild:
            shutil.rmtree(self.directory, ignore_errors=True)
            self._index = None
        index = self._open()
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        gone = [int(chunk_id) for chunk_id in removed]
        gone += [chunk_id for chunk_id, _ in added] if not rebuild else []
        if gone:
            writer.delete_documents_by_query(
                tantivy.Query.term_set_query(index.schema, "chunk_id", gone)
            )
        for chunk_id, text in added:
            document = tantivy.Document()
            document.add_unsigned("chunk_id", int(chunk_id))
            document.add_text("text", text)
            writer.add_document(document)
        writer.commit()
        writer.wait_merging_threads()
        index.reload()  # its own searches see the commit

    def checksum(self) -> str:
        """A digest of its files as they are now (its lock files aside): recorded
        in the manifest when published, compared when verified."""
        digest = hashlib.sha256()
        root = self.directory
        for path in sorted(root.iterdir()) if root.is_dir() else []:
            if path.is_file() and not path.name.endswith(".lock"):
                digest.update(path.name.encode() + b"\0")
                with path.open("rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
        return digest.hexdigest()

    def search(self, text: str, *, k: int, also: Sequence[str] = ()) -> KeywordHits:
        """The ``k`` best chunks for the query's terms, best first, as (chunk id,
        BM25, coverage): BM25 over the sum of the query terms' idf, about the
        idf-weighted share of the query a chunk holds (1 for each term once at
        average length), a scale that means the same from one query to the next.
        The terms of ``also`` (synonyms) match too, without growing that sum: a
        chunk with the synonym scores as one with the word.
        ValueError or OSError when a segment is damaged."""
        import tantivy

        terms = query_terms(text)
        if not terms or k <= 0:
            return []
        extra = [t for t in query_terms(" ".join(also)) if t not in terms]
        index = self._open()
        schema = index.schema
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", t))
                for t in terms + extra
            ]
        )
        searcher = index.searcher()
        hits = searcher.search(query, k, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("chunk_id", [address for _, address in hits])
        total = max(_sum_idf(searcher, terms), 1e-9)
        return [
            (int(chunk_id), float(score), float(score) / total)
            for (score, _), chunk_id in zip(hits, ids, strict=True)
        ]


def query_terms(text: str) -> list[str]:
    """The text's distinct terms as the index has them, in order."""
    return list(_terms(text))


@functools.lru_cache(maxsize=4096)
def _terms(text: str) -> tuple[str, ...]:
    # A search analyses its query for each leg, its snippets and its highlights.
    return tuple(dict.fromkeys(_analyzer().analyze(text)))


@functools.cache
def _analyzer() -> Any:
    return analyzer()


def _sum_idf(searcher: Any, terms: list[str]) -> float:
    """Sum of the terms' idf, as tantivy's BM25 computes it."""
    n = searcher.num_docs
    return sum(
        math.log(1 + (n - df + 0.5) / (df + 0.5))
        for df in (searcher.doc_freq("text", term) for term in terms)
    )
