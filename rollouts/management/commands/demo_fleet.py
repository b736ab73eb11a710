"""``manage.py demo_fleet``: the simulated demo gateways of ``make run`` (a Procfile process).

It lives in ``rollouts`` because it needs the layers below it (the fleet's device keys, the
registry's demo model, ``gateway.simulate``) and ``rollouts`` may import them all; ``opshero``,
the bottom layer, may not (pyproject's import-linter contracts).
"""

from __future__ import annotations

import os
import signal
import threading
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand

from rollouts import demo_fleet


class Command(BaseCommand):
    help = (
        "Run the seeded demo gateways as simulated agents against the local web server "
        "(DEMO_FLEET=0 turns it off; then it idles until stopped)."
    )

    def handle(self, *args, **options):
        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            decision = demo_fleet.decide(environ=os.environ)
            if not decision.run:
                # honcho stops every process when one exits, so an idle demo fleet waits for
                # its SIGTERM rather than ending `make run`.
                self.stdout.write(f"{decision.reason} Idle until stopped.")
                self.stdout.flush()
                while not stop.wait(60):
                    pass
                return
            server = demo_fleet.server_url(os.environ)
            fleet_path = demo_fleet.FLEET_DIR / "fleet.json"
            devices = demo_fleet.write_fleet_file(
                organization=decision.organization, path=fleet_path, server=server
            )
            self.stdout.write(
                f"Demo fleet: {len(devices)} gateways ({', '.join(d.name for d in devices)}) "
                f"of {decision.organization.name}; waiting for {server}/healthz"
            )
            self.stdout.flush()
            if not self._wait_for_server(server, stop):
                return
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        from gateway.simulate import main as simulate

        self.stdout.write(
            f"Demo fleet: simulating; one gateway drifts from minute "
            f"{demo_fleet.DRIFT_START_MINUTES}, summaries every {demo_fleet.SUMMARY_EVERY_S} s"
        )
        self.stdout.flush()
        # The simulator handles SIGTERM/SIGINT itself: it stops its gateways and returns.
        status = simulate(
            demo_fleet.simulator_arguments(
                fleet_path=fleet_path,
                state_root=demo_fleet.FLEET_DIR / "state",
                gateways=len(devices),
            )
        )
        if status:
            raise SystemExit(status)

    def _wait_for_server(self, server: str, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"{server}/healthz", timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            stop.wait(1)
        return False
