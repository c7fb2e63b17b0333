"""Chunks of registered sources, with their vectors. The database is the truth."""

from django.db import models


class Chunk(models.Model):
    """A piece of a source's text that fits the model's window, and its vector.

    A chunk's text never changes: new text makes a new chunk, so a chunk id names
    one vector for its whole life and the index can be kept in step by id alone.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        EMBEDDED = "embedded"
        FAILED = "failed"

    source_type = models.CharField(max_length=100)
    source_id = models.PositiveBigIntegerField()
    partition = models.CharField(max_length=100)
    field = models.CharField(max_length=50)
    position = models.PositiveIntegerField()
    text = models.TextField()
    content_hash = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    vector = models.BinaryField(null=True, editable=False)
    model_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["source_type", "source_id"]),
            models.Index(fields=["partition", "status"]),
            models.Index(fields=["status", "updated_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.source_type}#{self.source_id}/{self.field}[{self.position}]"
