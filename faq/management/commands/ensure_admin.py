"""Make sure a staff login exists for the local demo, and say what it is."""

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the 'admin' superuser with a random password if there is no superuser."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        saved = settings.VAR_DIR / "admin-password.txt"
        if users.filter(is_superuser=True).exists():
            hint = f" (password in {saved})" if saved.exists() else ""
            self.stdout.write(f"staff login: an existing superuser{hint}")
            return
        password = secrets.token_urlsafe(12)
        users.create_superuser("admin", "admin@localhost", password)
        saved.write_text(password + "\n")
        saved.chmod(0o600)
        self.stdout.write(f"staff login: admin / {password} (saved in {saved})")
