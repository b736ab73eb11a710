"""Create the demo organisation, one user per role, and each app's demo data."""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from opshero import demo


class Command(BaseCommand):
    help = "Create (idempotently) a demo organisation with one user per role, and demo data."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even when OPSHERO_ENV=production (demo users have known passwords).",
        )

    def handle(self, *args, allow_production: bool = False, **options):
        if settings.PRODUCTION and not allow_production:
            raise CommandError(
                "Refusing to create demo users with known passwords in production "
                "(pass --allow-production to insist)."
            )
        context = demo.seed()
        # Every other installed OpsHero app may add its own demo data in <app>/demo.py.
        for config in apps.get_app_configs():
            if config.name == "opshero" or not config.path.startswith(str(settings.BASE_DIR)):
                continue
            try:
                module = import_module(f"{config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
                continue
            module.seed(context, stdout=self.stdout)

        self.stdout.write(self.style.SUCCESS(f"Demo organisation: {context['org'].name}"))
        self.stdout.write("Demo logins (username / password / role):")
        for username, password, role in demo.credentials():
            self.stdout.write(f"  {username:<16} {password:<14} {role}")
