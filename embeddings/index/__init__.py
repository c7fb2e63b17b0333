"""The search index of every partition, in two legs kept in step by chunk id.

* ``base``: the contract each backend keeps (``DenseIndex``, ``KeywordIndex``);
* ``dense``: the dense leg in FAISS (flat or ivf);
* ``keywords``: the keyword leg in tantivy (BM25);
* ``store``: the partitions' published versions on disk, one writer, many readers;
* ``reader``: a process's view of what is published, both legs searched.

``embeddings.services`` is the writer: it keeps each partition's index in step
with the database, the truth.
"""
