"""The dense leg in PostgreSQL with the pgvector extension (``DenseIndex``).

One table holds every partition's vectors (``embeddings_vector``: partition, chunk
id, ``vector(dimension)``), searched by cosine distance (``<=>``) under an HNSW
index (``vector_cosine_ops``), so every host that reads the database sees the same
vectors, and reads scale with PostgreSQL's own replicas. pgvector's
``iterative_scan`` keeps a filtered HNSW search (one partition of many) from
returning fewer than ``k`` rows. Vectors travel in pgvector's binary format
(``pgvector.psycopg``).

``connection`` is a psycopg connection (or Django's, whose cursors take the same
``%s`` parameters) to a database where ``CREATE EXTENSION vector`` can run.
"""

from typing import Any

import numpy as np

from embeddings.index.base import Hits

TABLE = "embeddings_vector"
KIND = "pgvector"
EF_SEARCH = 100  # HNSW candidates a query keeps: recall against speed


def ensure(connection: Any, dimension: int) -> None:
    """The extension, the table and its HNSW index, if missing (one process at a
    time: concurrent ``CREATE ... IF NOT EXISTS`` can still collide)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])
        cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            "partition varchar(100) NOT NULL, chunk_id bigint NOT NULL, "
            f"embedding vector({int(dimension)}) NOT NULL, "
            "PRIMARY KEY (partition, chunk_id))"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_hnsw ON {TABLE} "
            "USING hnsw (embedding vector_cosine_ops)"
        )


def partition_clear(connection: Any, partition: str) -> None:
    """A partition's rows gone (if the table exists: nothing was embedded yet)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [TABLE])
        if cursor.fetchone()[0] is not None:
            cursor.execute(f"DELETE FROM {TABLE} WHERE partition = %s", [partition])


class PgVectorIndex:
    """One partition's vectors in ``embeddings_vector``."""

    def __init__(self, connection: Any, partition: str, dimension: int) -> None:
        self.connection = connection
        self.partition = partition
        self._dimension = dimension

    def _cursor(self) -> Any:
        from pgvector.psycopg import register_vector

        if hasattr(self.connection, "ensure_connection"):  # Django's
            self.connection.ensure_connection()
            raw = self.connection.connection
        else:
            raw = self.connection
        register_vector(raw)  # the connection's adapters; cheap once done
        return self.connection.cursor()

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def kind(self) -> str:
        return KIND

    def outgrown(self, count: int) -> bool:
        return False  # HNSW grows in place

    def __len__(self) -> int:
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {TABLE} WHERE partition = %s", [self.partition]
            )
            return int(cursor.fetchone()[0])

    def ids(self) -> np.ndarray:
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT chunk_id FROM {TABLE} WHERE partition = %s", [self.partition]
            )
            return np.asarray([row[0] for row in cursor.fetchall()], dtype=np.int64)

    def add(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        if not len(ids):
            return
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        with self._cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {TABLE} (partition, chunk_id, embedding) "
                "VALUES (%s, %s, %s) ON CONFLICT (partition, chunk_id) "
                "DO UPDATE SET embedding = EXCLUDED.embedding",
                [
                    (self.partition, int(chunk_id), row)
                    for chunk_id, row in zip(ids, rows, strict=True)
                ],
            )

    def clear(self) -> None:
        """Every row of the partition gone."""
        partition_clear(self.connection, self.partition)

    def remove(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        with self._cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE partition = %s AND chunk_id = ANY(%s)",
                [self.partition, [int(i) for i in ids]],
            )

    def search(self, matrix: np.ndarray, k: int) -> list[Hits]:
        queries = np.ascontiguousarray(matrix, dtype=np.float32).reshape(
            -1, self.dimension
        )
        if k < 1:
            return [[] for _ in range(len(queries))]
        found = []
        with self._cursor() as cursor:
            cursor.execute(f"SET hnsw.ef_search = {max(EF_SEARCH, int(k))}")
            cursor.execute("SET hnsw.iterative_scan = relaxed_order")
            for query in queries:
                cursor.execute(
                    f"SELECT chunk_id, 1 - (embedding <=> %s) AS cosine FROM {TABLE} "
                    "WHERE partition = %s ORDER BY embedding <=> %s LIMIT %s",
                    [query, self.partition, query, int(k)],
                )
                hits = [(int(i), float(s)) for i, s in cursor.fetchall()]
                # relaxed order: a few rows may come back out of order
                found.append(sorted(hits, key=lambda hit: -hit[1]))
        return found

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT chunk_id, embedding FROM {TABLE} "
                "WHERE partition = %s AND chunk_id = ANY(%s)",
                [self.partition, [int(i) for i in ids]],
            )
            return {
                int(i): np.asarray(vector.to_numpy(), dtype=np.float32)
                for i, vector in cursor.fetchall()
            }
