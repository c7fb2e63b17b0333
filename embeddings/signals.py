"""Signals other apps may listen to, without this app knowing them."""

from django.dispatch import Signal

# Sent with ``partition`` and ``chunk_ids`` once those chunks are searchable.
chunks_indexed = Signal()

# Sent with ``partition``, ``model`` and ``dimension`` once the partition's vectors
# are known to come from that model (after an embedding batch, after a re-embed).
partition_embedded = Signal()
