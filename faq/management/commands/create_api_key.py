"""Create an API key and print it, once."""

from typing import Any

from django.core.management.base import BaseCommand

from faq import selectors, services
from faq.exceptions import ApplicationError
from faq.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for programs; the key is printed once and stored hashed."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--collection", help="limit the key to this collection's slug"
        )
        parser.add_argument(
            "--permission", choices=ApiKey.Permission.values, default="read"
        )

    def handle(
        self,
        *args: Any,
        name: str,
        collection: str | None,
        permission: str,
        **options: Any,
    ) -> None:
        from django.core.management.base import CommandError

        try:
            scope = selectors.collection_get(slug=collection) if collection else None
        except ApplicationError as error:
            raise CommandError(error.message) from None
        _, secret = services.api_key_create(
            name=name, permission=permission, collection=scope
        )
        self.stdout.write(secret)
