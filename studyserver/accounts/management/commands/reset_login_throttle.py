"""python manage.py reset_login_throttle ADDRESS: let an address try to log in again now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from studyserver.accounts.lockout import reset_address


class Command(BaseCommand):
    help = ("Lift the failed-login throttle of one network address (LOGIN_ADDRESS_FAILURE_LIMIT); "
            "for a username locked from an address use axes_reset_username / axes_reset_ip.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", help="The client address, as the lockout warning in the log names it.")

    def handle(self, *args: Any, **options: Any) -> None:
        if reset_address(options["address"]):
            self.stdout.write(self.style.SUCCESS(f"{options['address']} may try to log in again."))
        else:
            self.stdout.write(f"{options['address']} had no failed logins counted: nothing to lift.")
