"""Device CSV import and export (the same columns both ways, so an export re-imports).

Import is all-or-nothing: every row is checked first and every bad row is reported with its
line number and reason; only a file without errors creates devices, in one transaction.

Export neutralises spreadsheet formulas as OWASP recommends ("CSV Injection"): a cell that
begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote,
so a serial such as ``=HYPERLINK(...)`` a device sent is shown as text, never run. Import drops
that one quote again (only before those characters), so an exported file re-imports unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from opshero.actors import Actor
from opshero.errors import InvalidInput, TooLarge
from opshero.models import Organization
from opshero.services import record_audit_event

from .audit import FleetVerb
from .models import DEVICE_TEXT_LIMITS, Device, HardwareTarget, Placement, Site
from .services import normalize_tags

COLUMNS = (
    "serial",
    "name",
    "site",
    "placement",
    "hardware_target",
    "tags",
    "agent_version",
    "runtime_version",
    "notes",
)
REQUIRED = ("serial", "name", "site")
MAX_ERRORS_REPORTED = 200
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def neutralise_cell(value: str) -> str:
    """The cell as a spreadsheet shows it as text: a leading quote before a formula lead (and
    before a quote already there, so that ``restore_cell`` is its exact inverse)."""
    if value.startswith(FORMULA_LEADS) or restore_cell(value) != value:
        return _QUOTE + value
    return value


def restore_cell(value: str) -> str:
    """The value ``neutralise_cell`` was given: the one quote it added is dropped."""
    rest = value[1:]
    if value.startswith(_QUOTE) and (rest.startswith(FORMULA_LEADS) or rest.startswith(_QUOTE)):
        return rest
    return value


def export_devices_csv(devices: Iterable[Device]) -> str:
    """The devices as CSV with the import's columns, so an exported file re-imports as it is;
    every cell is neutralised against formula injection."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for d in devices:
        cells = (
            d.serial,
            d.name,
            d.site.name,
            d.placement,
            d.hardware_target.name if d.hardware_target else "",
            ";".join(d.tags),
            d.agent_version,
            d.runtime_version,
            d.notes,
        )
        writer.writerow([neutralise_cell(str(cell)) for cell in cells])
    return out.getvalue()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"The file is not UTF-8: byte 0x{data[exc.start]:02X} on line {line} cannot be "
            "read. Save the sheet as 'CSV UTF-8' and try again.",
            fields={"file": [f"Line {line}: not UTF-8 (byte 0x{data[exc.start]:02X})."]},
            code="bad_encoding",
        ) from exc


def _placement(value: str) -> str | None:
    value = value.strip()
    if not value:
        return Placement.NEAR_EDGE
    for choice, label in Placement.choices:
        if value.lower() in (choice, label.lower()):
            return choice
    return None


@transaction.atomic
def import_devices_csv(*, organization: Organization, data: bytes, actor: Actor) -> list[Device]:
    """Create the devices of a CSV file, or none of them; raises InvalidInput listing every
    bad row as ``fields["line N"] = [reasons]``."""
    if len(data) > settings.FLEET_CSV_MAX_BYTES:
        raise TooLarge(
            f"The file is {len(data):,} bytes; the limit is {settings.FLEET_CSV_MAX_BYTES:,}.",
            fields={"file": ["Too large; split it into several files."]},
        )
    if not data.strip():
        raise InvalidInput("The file is empty.", fields={"file": ["No rows."]}, code="empty_file")
    text = _decode(data)
    if "\x00" in text:
        raise InvalidInput(
            "The file contains NUL bytes: it is not a text CSV.",
            fields={"file": ["Binary content."]},
            code="not_csv",
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise InvalidInput("The file has no header row.", fields={"file": ["No header."]}) from exc
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        reasons = []
        if missing:
            reasons.append(f"Missing column(s): {', '.join(missing)}.")
        if unknown:
            reasons.append(f"Unknown column(s): {', '.join(unknown)}.")
        raise InvalidInput(
            f"The header must name the columns {', '.join(COLUMNS)}.",
            fields={"line 1": reasons},
            code="bad_header",
        )

    sites = {s.name.lower(): s for s in Site.objects.filter(organization=organization)}
    targets = {
        t.name.lower(): t
        for t in HardwareTarget.objects.filter(
            Q(organization=organization) | Q(organization__isnull=True)
        )
    }
    existing = set(
        Device.objects.filter(organization=organization).values_list("serial", flat=True)
    )

    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    devices: list[Device] = []
    rows = 0
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if rows > settings.FLEET_CSV_MAX_ROWS:
                raise TooLarge(
                    f"More than {settings.FLEET_CSV_MAX_ROWS:,} rows; split the file.",
                    fields={"file": ["Too many rows."]},
                )
            problems: list[str] = []
            if len(row) != len(header):
                problems.append(f"{len(row)} values for {len(header)} columns.")
                errors[f"line {line}"] = problems
                continue
            values = {
                name: restore_cell(cell).strip() for name, cell in zip(header, row, strict=True)
            }
            for name in REQUIRED:
                if not values.get(name):
                    problems.append(f"{name} is empty.")
            serial = values.get("serial", "")
            for name in ("serial", "name", "agent_version", "runtime_version"):
                limit = DEVICE_TEXT_LIMITS[name]
                if len(values.get(name, "")) > limit:
                    problems.append(f"{name} is longer than {limit} characters.")
            if serial in seen:
                problems.append(f"serial {serial} already appears on line {seen[serial]}.")
            elif serial in existing:
                problems.append(f"serial {serial} is already registered.")
            if serial:
                seen.setdefault(serial, line)
            site = sites.get(values.get("site", "").lower())
            if values.get("site") and site is None:
                problems.append(f"unknown site '{values['site']}'.")
            placement = _placement(values.get("placement", ""))
            if placement is None:
                problems.append(
                    f"placement '{values['placement']}' is not one of "
                    f"{', '.join(Placement.values)}."
                )
            target = None
            if values.get("hardware_target"):
                target = targets.get(values["hardware_target"].lower())
                if target is None:
                    problems.append(f"unknown hardware target '{values['hardware_target']}'.")
            try:
                tags = normalize_tags(values.get("tags", ""))
            except InvalidInput as exc:
                problems.extend(exc.fields.get("tags", [exc.message]))
                tags = []
            if problems:
                if len(errors) < MAX_ERRORS_REPORTED:
                    errors[f"line {line}"] = problems
                continue
            devices.append(
                Device(
                    organization=organization,
                    serial=serial,
                    name=values["name"],
                    site=site,
                    placement=placement,
                    hardware_target=target,
                    tags=tags,
                    agent_version=values.get("agent_version", ""),
                    runtime_version=values.get("runtime_version", ""),
                    notes=values.get("notes", ""),
                )
            )
    except csv.Error as exc:
        raise InvalidInput(
            f"The file is not valid CSV near line {reader.line_num}: {exc}.",
            fields={f"line {reader.line_num}": [str(exc)]},
            code="not_csv",
        ) from exc

    if errors:
        count = len(errors)
        raise InvalidInput(
            f"{count} row{'s' if count != 1 else ''} cannot be imported; nothing was imported.",
            fields=errors,
            code="invalid_rows",
        )
    if not devices:
        raise InvalidInput("The file has a header but no devices.", fields={"file": ["No rows."]})
    created = Device.objects.bulk_create(devices)
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=FleetVerb.DEVICE_IMPORTED,
        target_type="fleet.device",
        target_label=f"{len(created)} devices from CSV",
        data={"count": len(created), "serials": [d.serial for d in created[:50]]},
    )
    return created
