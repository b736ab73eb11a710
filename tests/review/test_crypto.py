"""Envelope encryption of evidence: the round trip, and every kind of tampering refused."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from review import crypto, services, storage
from review.models import EvidenceSample
from review.services import EvidenceTamperedError
from tests.factories import enroll_device

from .builders import json_sample, png_bytes
from .isolation_data import SYSTEM, stored_sample

MASTER = os.urandom(32)
SAMPLE = "3f1c2c9e-0000-4000-8000-000000000001"


def test_a_sealed_sample_opens_to_the_same_bytes_and_hides_them():
    body = png_bytes(size=4000)
    sealed = crypto.seal(body, master=MASTER, organization_id=7, sample_id=SAMPLE)
    assert body not in sealed.ciphertext
    assert len(sealed.wrapped_key) == 12 + 32 + 16  # nonce, data key, GCM tag
    opened = crypto.open_sample(
        sealed.ciphertext, sealed.wrapped_key, master=MASTER, organization_id=7, sample_id=SAMPLE
    )
    assert opened == body


def test_every_sample_has_its_own_data_key():
    one = crypto.seal(b"same", master=MASTER, organization_id=7, sample_id=SAMPLE)
    two = crypto.seal(b"same", master=MASTER, organization_id=7, sample_id=SAMPLE)
    assert one.ciphertext != two.ciphertext and one.wrapped_key != two.wrapped_key


@pytest.mark.parametrize("part", ["ciphertext", "wrapped_key"])
def test_a_flipped_byte_in_either_part_is_refused(part):
    sealed = crypto.seal(b'{"inputs": 1}', master=MASTER, organization_id=7, sample_id=SAMPLE)
    parts = {
        "ciphertext": bytearray(sealed.ciphertext),
        "wrapped_key": bytearray(sealed.wrapped_key),
    }
    parts[part][-5] ^= 0x01
    with pytest.raises(crypto.EvidenceTampered):
        crypto.open_sample(
            bytes(parts["ciphertext"]),
            bytes(parts["wrapped_key"]),
            master=MASTER,
            organization_id=7,
            sample_id=SAMPLE,
        )


@pytest.mark.parametrize(
    "change",
    [
        {"organization_id": 8},
        {"sample_id": "3f1c2c9e-0000-4000-8000-000000000002"},
        {"master": os.urandom(32)},
        {"key_version": 2},
    ],
    ids=["other-org", "other-sample", "other-master", "unknown-key-version"],
)
def test_the_wrong_organisation_sample_master_or_version_is_refused(change):
    sealed = crypto.seal(b"evidence", master=MASTER, organization_id=7, sample_id=SAMPLE)
    values = {"master": MASTER, "organization_id": 7, "sample_id": SAMPLE, **change}
    with pytest.raises(crypto.EvidenceTampered):
        crypto.open_sample(sealed.ciphertext, sealed.wrapped_key, **values)


def test_truncated_parts_are_refused():
    with pytest.raises(crypto.EvidenceTampered):
        crypto.open_sample(b"short", b"x" * 60, master=MASTER, organization_id=7, sample_id=SAMPLE)


def test_the_organisations_key_encryption_keys_differ():
    assert crypto.key_encryption_key(MASTER, 1) != crypto.key_encryption_key(MASTER, 2)
    assert crypto.key_encryption_key(MASTER, 1) == crypto.key_encryption_key(MASTER, 1)


# --- through the services, with real stored objects ------------------------------------------


@pytest.mark.django_db
def test_a_stored_sample_reads_back_and_is_on_disk_as_ciphertext(gateway, version):
    device, _ = gateway
    body = json_sample(note="kept")
    sample = stored_sample(device, body, sequence=1)
    on_disk = storage.read_object(sample.object_name)
    assert body not in on_disk
    assert services.read_evidence(sample=sample, actor=SYSTEM) == body


@pytest.mark.django_db
def test_a_flipped_byte_in_a_stored_object_is_refused(gateway, version):
    device, _ = gateway
    sample = stored_sample(device, json_sample(), sequence=1)
    path = storage.open_path(sample.object_name)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EvidenceTamperedError):
        services.read_evidence(sample=sample, actor=SYSTEM)


@pytest.mark.django_db
def test_two_samples_objects_swapped_are_both_refused(gateway, version):
    device, _ = gateway
    one = stored_sample(device, json_sample(n=1), sequence=1)
    two = stored_sample(device, json_sample(n=2), sequence=2)
    path_one, path_two = storage.open_path(one.object_name), storage.open_path(two.object_name)
    bytes_one, bytes_two = path_one.read_bytes(), path_two.read_bytes()
    path_one.write_bytes(bytes_two)
    path_two.write_bytes(bytes_one)
    for sample in (one, two):
        with pytest.raises(EvidenceTamperedError):
            services.read_evidence(sample=EvidenceSample.objects.get(pk=sample.pk), actor=SYSTEM)


@pytest.mark.django_db
def test_a_sample_moved_to_another_organisation_is_refused(world, gateway, version):
    device, _ = gateway
    sample = stored_sample(device, json_sample(), sequence=1)
    # The row (object and key unchanged) claimed by tenant b: its key does not open there.
    EvidenceSample.objects.filter(pk=sample.pk).update(organization=world.b.org)
    with pytest.raises(EvidenceTamperedError):
        services.read_evidence(sample=EvidenceSample.objects.get(pk=sample.pk), actor=SYSTEM)
    # And the master secret is not the signing one.
    assert settings.EVIDENCE_MASTER_KEY != settings.SIGNING_MASTER_KEY


@pytest.mark.django_db
def test_a_wrapped_key_copied_from_another_sample_is_refused(gateway, version):
    device, _ = gateway
    one = stored_sample(device, json_sample(n=1), sequence=1)
    two = stored_sample(device, json_sample(n=2), sequence=2)
    EvidenceSample.objects.filter(pk=two.pk).update(wrapped_key=bytes(one.wrapped_key))
    with pytest.raises(EvidenceTamperedError):
        services.read_evidence(sample=EvidenceSample.objects.get(pk=two.pk), actor=SYSTEM)


@pytest.mark.django_db
def test_another_devices_site_is_irrelevant_to_opening(world, version):
    """The key binds organisation and sample only: a device moved to another site still reads."""
    from tests.factories import make_site

    from .builders import open_evidence_policy

    site = make_site(world.a.org, "Crypto dock")
    open_evidence_policy(site)
    device, _ = enroll_device(world.a.org, site=site)
    sample = stored_sample(device, json_sample(), sequence=5)
    other = make_site(world.a.org, "Other dock")
    EvidenceSample.objects.filter(pk=sample.pk).update(site=other)
    fresh = EvidenceSample.objects.get(pk=sample.pk)
    assert services.read_evidence(sample=fresh, actor=SYSTEM) == json_sample()
