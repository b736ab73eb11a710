"""How many simulated gateways (``opshero-gateway simulate``) one process sustains.

One database (BENCH_DATABASE_URL, default opshero_bench_simulator, recreated), gunicorn
(2 workers x 4 threads) in front of it, and a fleet of enrolled devices (generated Ed25519
keys) with the signed baseline assigned. For each fleet size the simulator runs in ONE
process for ``--duration`` seconds at 60 inferences a minute per gateway, health every 60 s,
desired polls at the policy's 15 s minimum. Per size it prints the simulator's summary plus:
the achieved inference rate against the target, the simulator's CPU seconds per wall second,
the server's (gunicorn + one ingest worker) CPU seconds per wall second and per 1,000
gateways, and the p95 lateness of a gateway's tick (a tick a second; a late tick means the
process no longer keeps up). Simulator and server share the cores: the figure is a floor.

    .venv/bin/python benchmarks/bench_simulator.py [--sizes 50,100,200,400] [--duration 60]
        [--threads T]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opshero_bench_simulator"
)

import bench_rollouts as common


def fleet_file(world: common.World, count: int, path: Path, server: str) -> None:
    from cryptography.hazmat.primitives import serialization

    from fleet import services as fleet_services
    from fleet.models import Device, DeviceCredential
    from gateway.loadgen import FleetDevice, FleetFile
    from opshero.actors import Actor
    from protocol import device_auth

    ids = world.device_ids[:count]
    rows, pems = [], []
    for pk in ids:
        key = device_auth.generate_device_key()
        public = key.public_key()
        rows.append(
            DeviceCredential(
                device_id=pk,
                public_key=device_auth.canonical_public_key(public),
                fingerprint=device_auth.key_fingerprint(public),
            )
        )
        pems.append(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        )
    DeviceCredential.objects.bulk_create(rows, batch_size=2000)
    admin = Actor.system("bench")
    for site in world.sites:
        fleet_services.set_operating_policy(
            organization=world.org,
            actor=admin,
            site=site,
            desired_poll_interval_s=15,
            telemetry_interval_s=60,  # the standard default: a batch a minute per gateway
        )
    uids = dict(Device.objects.filter(pk__in=ids).values_list("pk", "uid"))
    FleetFile(
        server=server,
        devices=tuple(
            FleetDevice(device_id=str(uids[pk]), private_key_pem=pem)
            for pk, pem in zip(ids, pems, strict=True)
        ),
    ).write(path)


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp; utime, stime are fields 14 and 15 of stat
            total += int(fields[11]) + int(fields[12])
    return total / tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,100,200,400")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--inferences-per-minute", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=None, help="simulator worker threads")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-simulator-"))
    common.recreate_database()
    common.setup_django(tmp / "var")
    largest = max(sizes)
    world = common.World("simbench", sites=max(1, largest // 50), per_site=50)
    port = common.free_port()
    server = f"http://127.0.0.1:{port}"
    env = {**os.environ, **common.bench_env(tmp / "var"), "HOME": str(tmp)}
    log = (tmp / "web.log").open("ab")
    web = subprocess.Popen(
        [
            str(common.BIN / "gunicorn"),
            "opshero.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
        ],
        cwd=common.ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker_log = (tmp / "worker.log").open("ab")
    worker = subprocess.Popen(
        [
            str(common.BIN / "celery"),
            "-A",
            "opshero",
            "worker",
            "--queues",
            "ingest,default,rollouts",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
        ],
        cwd=common.ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results = []
    try:
        common.wait_port(port)
        fleet = tmp / "fleet.json"
        fleet_file(world, largest, fleet, server)
        everyone = json.loads(fleet.read_text())
        for size in sizes:
            share = tmp / f"fleet-{size}.json"
            share.write_text(json.dumps({**everyone, "devices": everyone["devices"][:size]}))
            server_cpu = group_cpu_s(web.pid) + group_cpu_s(worker.pid)
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "simulate",
                    "--fleet",
                    str(share),
                    "--state-root",
                    str(tmp / f"state-{size}"),
                    "--duration",
                    str(args.duration),
                    "--inferences-per-minute",
                    str(args.inferences_per_minute),
                    "--poll-interval",
                    "15",
                    *(["--threads", str(args.threads)] if args.threads else []),
                ],
                cwd=common.ROOT,
                env={**os.environ, "HOME": str(tmp)},
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                results.append({"gateways": size, "error": run.stderr[-2000:]})
                print(json.dumps(results[-1]), flush=True)
                continue
            summary = json.loads(run.stdout.strip().splitlines()[-1])
            elapsed = summary["elapsed_s"]
            summary["inferences_per_s"] = round(summary["inferences"] / elapsed, 1)
            summary["target_inferences_per_s"] = round(size * args.inferences_per_minute / 60, 1)
            summary["cpu_per_wall_s"] = round(sum(summary["cpu_s"]) / elapsed, 2)
            # The server's side: gunicorn and the ingest worker, CPU seconds per wall second,
            # and scaled to 1,000 gateways (an estimate while the server keeps up).
            used = group_cpu_s(web.pid) + group_cpu_s(worker.pid) - server_cpu
            summary["server_cpu_per_wall_s"] = round(used / elapsed, 3)
            summary["server_cores_per_1000_gateways"] = round(used / elapsed / size * 1000, 2)
            results.append(summary)
            print(json.dumps(summary), flush=True)
    finally:
        for proc in (web, worker):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    print(json.dumps({"simulator": results, "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
