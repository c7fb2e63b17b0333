"""Signals other apps may listen to, without this app knowing them."""

from django.dispatch import Signal

# Sent with ``partition`` and ``chunk_ids`` once those chunks are searchable.
chunks_indexed = Signal()

# Sent with ``partition``, ``model`` and ``dimension`` once the partition's vectors
# are known to come from that model (after an embedding batch, after a re-embed).
partition_embedded = Signal()

# Sent by a web host's follower of the change feed (embeddings.replica) once its
# replica of ``partition`` is current: with ``chunk_ids`` the chunks it applied,
# None when it took the whole partition again (or removed it).
replica_applied = Signal()

# Sent by the follower after its full check, with every ``partitions`` stored.
replica_checked = Signal()
