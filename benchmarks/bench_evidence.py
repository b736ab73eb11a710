"""Evidence: upload latency of a 200 KB PNG over HTTP, and the labelled export of 10,000 samples.

  upload   a real gunicorn server (``--web-workers`` sync workers) on this machine and one
           client sending signed ``POST /api/v1/device/evidence`` requests back to back on a
           keep-alive connection (``http.client``); each upload is a distinct event whose
           inference was stored beforehand, so every sample is checked, decoded, encrypted,
           written (fsync'd) and linked. P50/P95/P99 client-side, per request. The image
           decoding (``review.services.check_image``), the encryption (``review.crypto.seal``) and
           the fsync'd object write are timed apart, in this process, on the same bodies.
  export   ``--export-samples`` reviewed samples with real encrypted objects (bulk-created: the
           setup is not timed), then ``create_labelled_export(build_now=True)``: decrypt, re-encode
           every image from its pixels, write the zip, the manifest and its digests.

Uses its own database (BENCH_DATABASE_URL, default opshero_bench_ev, recreated) and a temporary
evidence store and var directory.

    .venv/bin/python benchmarks/bench_evidence.py [--uploads 400] [--web-workers 2]
        [--export-samples 10000] [--export-image-side 64] [--phases upload,export]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_telemetry_ingest import free_port, start, stop, wait_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opshero_bench_ev"
)
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
UPLOAD_BYTES = 200 * 1024


def recreate_database() -> None:
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(BENCH_URL)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(tmp: Path) -> dict[str, str]:
    """Django on the bench database; the environment the server gets too (same keys, store)."""
    env = {
        "DATABASE_URL": BENCH_URL,
        "REDIS_URL": REDIS,
        "DJANGO_SETTINGS_MODULE": "opshero.settings",
        "OPSHERO_VAR_DIR": str(tmp / "var"),
        "EVIDENCE_ROOT": str(tmp / "evidence"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # The web process answers without waiting on the broker (nothing is enqueued here).
        "TELEMETRY_ENQUEUE_IN_BACKGROUND": "true",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {**os.environ, **env, "HOME": str(tmp)}


def noise_png(side: int, *, seed: int, mode: str = "RGB") -> bytes:
    import random

    from PIL import Image

    rng = random.Random(seed)
    channels = len(mode)
    image = Image.frombytes(mode, (side, side), rng.randbytes(side * side * channels))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_of_size(size: int, *, seed: int) -> bytes:
    """A noise PNG of about ``size`` bytes (noise does not compress: bytes = about 3 a pixel)."""
    side = int((size / 3) ** 0.5)
    return noise_png(side, seed=seed)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "mean": round(statistics.fmean(ms), 2),
        "p50": round(pct(ms, 50), 2),
        "p95": round(pct(ms, 95), 2),
        "p99": round(pct(ms, 99), 2),
        "max": round(max(ms), 2),
    }


# --- fixtures ----------------------------------------------------------------------------------


def make_org(slug: str):
    from fleet import services as fleet_services
    from fleet.models import Site
    from modelregistry.models import MlModel, ModelVersion
    from opshero.actors import Actor
    from opshero.models import Organization
    from protocol import device_auth

    actor = Actor.system("bench")
    org = Organization.objects.create(name=f"Bench {slug}", slug=slug)
    site = Site.objects.create(organization=org, name=f"{slug} dock", kind="dock")
    fleet_services.set_operating_policy(
        organization=org, actor=actor, site=site, evidence_daily_cap=100_000, image_evidence=True
    )
    _, token = fleet_services.create_enrollment_token(organization=org, site=site, actor=actor)
    key = device_auth.generate_device_key()
    device = fleet_services.enroll_device(
        token=token,
        public_key=device_auth.public_key_text(key),
        facts=fleet_services.EnrollmentFacts(serial=f"BENCH-{slug}"),
    )
    model = MlModel.objects.create(organization=org, name="parcel-damage")
    version = ModelVersion.objects.create(
        model=model,
        version="v3",
        artifact="artifacts/bench.onnx",
        file_name="bench.onnx",
        sha256="a" * 64,
        size_bytes=1024,
        io_contract={"labels": ["dent", "scratch", "crush", "ok"]},
    )
    return org, site, device, key, version


def store_inferences(device, count: int, epoch: str) -> None:
    from datetime import UTC, timedelta

    from django.utils import timezone

    from protocol import telemetry as wire
    from telemetry import services as telemetry_services

    model = wire.ModelRef(name="parcel-damage", version="v3", sha256="a" * 64)
    base = timezone.now() - timedelta(minutes=5)
    started = timezone.now() - timedelta(days=1)
    for first in range(1, count + 1, 2000):
        events = [
            wire.InferenceEvent(
                epoch=epoch,
                sequence=seq,
                timestamp=(base + timedelta(milliseconds=seq)).astimezone(UTC),
                model=model,
                latency_ms=12.0,
                confidence=0.41,
                predicted_class="dent",
                shape_bucket="1x3x224x224",
            )
            for seq in range(first, min(count, first + 1999) + 1)
        ]
        body = wire.encode_batch(
            device_epoch=wire.DeviceEpoch(epoch=epoch, started_at=started), events=events
        )
        receipt = telemetry_services.land_batch(
            device=device, body=body, content_type="application/json", enqueue=False
        )
        telemetry_services.ingest_landed_batch(batch_id=receipt.batch_id)


# --- upload ------------------------------------------------------------------------------------


def bench_upload(args, env: dict, tmp: Path) -> dict:
    from django.conf import settings

    from protocol import device_auth
    from protocol import evidence as wire
    from review import crypto, services, storage

    org, _site, device, key, _ = make_org("bench-upload")
    epoch = "bench-epoch-upload"
    # Events for the HTTP uploads, then as many for the in-process service calls.
    store_inferences(device, 2 * args.uploads + args.warmup, epoch)
    bodies = [png_of_size(UPLOAD_BYTES, seed=i) for i in range(8)]
    sizes = sorted({len(b) for b in bodies})

    # Apart, in this process: decoding, encryption and the fsync'd write of the same bodies, and
    # the whole service (``receive_evidence``: checks, policy, event lookup, cap, store, link).
    decode, seal, write, service = [], [], [], []
    for i in range(args.uploads):
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter()
        services.check_image(body, "image/png")
        t1 = time.perf_counter()
        sealed = crypto.seal(
            body, master=settings.EVIDENCE_MASTER_KEY, organization_id=org.pk, sample_id=str(i)
        )
        t2 = time.perf_counter()
        storage.write_object(f"bench-apart/{i}.bin", sealed.ciphertext)
        t3 = time.perf_counter()
        decode.append(t1 - t0)
        seal.append(t2 - t1)
        write.append(t3 - t2)
    first_service_seq = args.uploads + args.warmup + 1
    for i in range(args.uploads):
        query = wire.evidence_query(
            wire.EvidenceRef(epoch=epoch, sequence=first_service_seq + i, reason="audit")
        )
        t0 = time.perf_counter()
        services.receive_evidence(
            device=device, body=bodies[i % len(bodies)], content_type="image/png", query=query
        )
        service.append(time.perf_counter() - t0)

    port = free_port()
    web = start(
        [
            str(BIN / "gunicorn"),
            "opshero.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--timeout",
            "120",
        ],
        env,
        tmp / "web.log",
    )
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    try:
        wait_port(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in range(args.uploads + args.warmup):
            body = bodies[n % len(bodies)]
            query = wire.evidence_query(
                wire.EvidenceRef(epoch=epoch, sequence=n + 1, reason="low_confidence")
            )
            headers = device_auth.sign_request(
                private_key=key,
                device_id=str(device.uid),
                method="POST",
                path=wire.EVIDENCE_PATH,
                query=query,
                body=body,
            )
            headers["Content-Type"] = "image/png"
            t0 = time.perf_counter()
            conn.request("POST", f"{wire.EVIDENCE_PATH}?{query}", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - t0
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if n >= args.warmup:
                latencies.append(elapsed)
        conn.close()
    finally:
        stop(web)
    from review.models import EvidenceSample

    linked = EvidenceSample.objects.filter(organization=org, status="linked").count()
    return {
        "server": f"gunicorn, {args.web_workers} sync workers, one keep-alive client",
        "uploads": args.uploads,
        "warmup": args.warmup,
        "body_bytes": [sizes[0], sizes[-1]],
        "statuses": statuses,
        "linked_samples": linked,
        "http_ms": summary_ms(latencies),
        "apart_in_process_ms": {
            "decode_check_image": summary_ms(decode),
            "encrypt_seal": summary_ms(seal),
            "write_fsync": summary_ms(write),
            "receive_evidence_service": summary_ms(service),
        },
    }


# --- export ------------------------------------------------------------------------------------


def bench_export(args) -> dict:
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from opshero.actors import Actor
    from review import crypto, exports, storage
    from review.models import EvidenceSample, Review

    org, site, device, _, version = make_org("bench-export")
    images = [noise_png(args.export_image_side, seed=i) for i in range(16)]
    json_body = json.dumps({"inputs": {"input": [[0.1] * 64]}, "device": "bench"}).encode()
    now = timezone.now()
    classes = ["dent", "scratch", "crush", "ok"]
    t_setup = time.perf_counter()
    samples, reviews = [], []
    for n in range(args.export_samples):
        is_json = args.json_every and n % args.json_every == 0
        body = json_body if is_json else images[n % len(images)]
        sample_id = EvidenceSample._meta.get_field("id").default()
        sealed = crypto.seal(
            body,
            master=settings.EVIDENCE_MASTER_KEY,
            organization_id=org.pk,
            sample_id=str(sample_id),
        )
        name = storage.sample_object_name(organization_id=org.pk, sample_id=str(sample_id))
        path = storage.open_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sealed.ciphertext)  # setup only: no fsync
        predicted, true = classes[n % 4], classes[(n // 4) % 4]
        samples.append(
            EvidenceSample(
                id=sample_id,
                organization=org,
                site=site,
                device=device,
                epoch="bench-epoch-export",
                sequence=n + 1,
                reason="low_confidence",
                status="reviewed",
                media_type="application/json" if is_json else "image/png",
                size_bytes=len(body),
                sha256="0" * 64,
                object_name=name,
                wrapped_key=sealed.wrapped_key,
                site_kind="dock",
                received_at=now - timedelta(hours=1),
                delete_after=now + timedelta(days=30),
                linked_at=now - timedelta(hours=1),
                model_version=version,
                model_name="parcel-damage",
                model_version_label="v3",
                model_sha256="a" * 64,
                predicted_class=predicted,
                confidence=0.41,
            )
        )
        reviews.append(
            Review(
                sample_id=sample_id,
                organization=org,
                site=site,
                model_version=version,
                model_sha256="a" * 64,
                sample_reason="low_confidence",
                predicted_class=predicted,
                confidence=0.41,
                verdict="confirmed" if predicted == true else "corrected",
                true_class=true,
                reason="",
            )
        )
    EvidenceSample.objects.bulk_create(samples, batch_size=2000)
    Review.objects.bulk_create(reviews, batch_size=2000)
    setup_s = time.perf_counter() - t_setup
    t0 = time.perf_counter()
    export = exports.create_labelled_export(
        organization=org, actor=Actor.system("bench"), build_now=True
    )
    elapsed = time.perf_counter() - t0
    assert export.status == "ready", export.error
    return {
        "samples": export.samples,
        "images": sum(1 for s in samples if s.media_type == "image/png"),
        "image": f"{args.export_image_side}x{args.export_image_side} RGB noise PNG, "
        f"{min(map(len, images))}-{max(map(len, images))} bytes",
        "zip_bytes": export.size_bytes,
        "setup_s": round(setup_s, 1),
        "export_s": round(elapsed, 2),
        "samples_per_s": round(export.samples / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--export-samples", type=int, default=10_000)
    parser.add_argument("--export-image-side", type=int, default=64)
    parser.add_argument("--json-every", type=int, default=5, help="one JSON sample in N (0: none)")
    parser.add_argument("--phases", default="upload,export")
    args = parser.parse_args()
    recreate_database()
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as name:
        tmp = Path(name)
        env = setup_django(tmp)
        report: dict = {
            "machine": f"{platform.node()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "load_before": os.getloadavg(),
        }
        phases = args.phases.split(",")
        if "upload" in phases:
            report["upload"] = bench_upload(args, env, tmp)
            print(json.dumps({"upload": report["upload"]}), flush=True)
        if "export" in phases:
            report["export"] = bench_export(args)
            print(json.dumps({"export": report["export"]}), flush=True)
        report["load_after"] = os.getloadavg()
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
