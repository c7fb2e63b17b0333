"""Signals other apps may listen to, without this app knowing them."""

from django.dispatch import Signal

# Sent with ``partition`` and ``chunk_ids`` once those chunks are searchable.
chunks_indexed = Signal()
