"""Healthcare: privacy-preserving decision support (the seed's reference architecture 3).

Every default carries its source; "assumption:" marks a figure to replace with your own.
"""

from __future__ import annotations

from roi.engine import RoiInputs, Scenario

from ._build import e, each, plan_ramp


def build() -> RoiInputs:
    a = "assumption: "
    ramp, ramp_notes = plan_ramp(4)
    scenario = Scenario(
        sites=4,
        devices_per_site=3,
        gateways_per_site=1,
        annual_discount_rate=0.08,
        hybrid_on_device_share=0.3,
        hybrid_near_edge_share=0.7,
        hybrid_cloud_share=0.0,
        **ramp,
        notes={
            "sites": a + "four outpatient clinics.",
            "devices_per_site": a + "three triage or documentation workstations per clinic.",
            "gateways_per_site": a + "one local box per clinic (playbook: 'clinics using a local "
            "box for triage support').",
            "annual_discount_rate": a + "8 % cost of capital; use your finance team's rate.",
            "hybrid_on_device_share": (
                "seed, reference architecture 3: the clinic's local box standardises "
                "behaviour (70 % of events), on-device where feasible (30 %); only de-"
                "identified aggregates go to the cloud."
            ),
            **ramp_notes,
        },
    )
    est = {
        "latency.baseline_time_to_action_s": e(
            180, 240, 360, a + "triage documentation time per patient today."
        ),
        **each(
            "latency.time_to_action_s",
            on_device=(150, 200, 300),
            near_edge=(150, 200, 300),
            cloud=(150, 205, 310),
            hybrid=(150, 200, 300),
            source=a + "AI-assisted documentation saves about 40 s per patient; cloud adds "
            "a few seconds of upload.",
        ),
        "latency.value_per_hour_saved": e(45, 60, 85, a + "loaded nurse cost per hour."),
        "latency.events_per_device_per_day": e(
            15, 25, 40, a + "patients triaged per workstation per calendar day."
        ),
        "power.device_watts": e(2, 5, 10, a + "extra draw of a Windows NPU laptop inferring."),
        "power.device_hours_per_day": e(1, 2, 4, a + "inference time per workstation per day."),
        "power.gateway_watts": e(20, 40, 80, a + "small local inference box."),
        "power.electricity_price_per_kwh": e(
            0.15, 0.25, 0.40, a + "commercial tariff range; use your electricity bill."
        ),
        "power.cooling_overhead_factor": e(
            1.0, 1.2, 1.5, a + "box in a small comms room with air conditioning."
        ),
        "offline.outage_hours_per_site": e(0.5, 1, 4, a + "clinic internet outages per month."),
        "offline.revenue_lost_per_outage_hour": e(
            50, 150, 400, a + "delayed documentation and rebooked appointments per hour."
        ),
        **each(
            "offline.completes_offline",
            on_device=(0.8, 0.95, 1.0),
            near_edge=(0.8, 0.95, 1.0),
            cloud=(0.0, 0.0, 0.1),
            hybrid=(0.7, 0.85, 1.0),
            source=a + "local inference works on the clinic LAN; cloud needs the internet.",
        ),
        **each(
            "privacy.data_leaving_gb_per_site",
            on_device=(0.01, 0.02, 0.1),
            near_edge=(0.01, 0.02, 0.1),
            cloud=(1, 3, 8),
            hybrid=(0.2, 0.5, 1.5),
            source="derived: 3 workstations x 25 patients/day x 30.4 days x ~1.3 MB of "
            "captured media = 3 GB; local placements upload de-identified results only.",
        ),
        "privacy.egress_price_per_gb": e(
            0.02, 0.1, 0.3, a + "compliant cloud storage and ingestion per GB."
        ),
        "privacy.annual_compliance_cost": e(
            10_000,
            25_000,
            60_000,
            a + "PHI risk assessments, audits and breach insurance "
            "share attributable to the workflow.",
        ),
        **each(
            "privacy.compliance_reduction",
            on_device=(0.1, 0.25, 0.4),
            near_edge=(0.1, 0.25, 0.4),
            cloud=(0, 0, 0.05),
            hybrid=(0.05, 0.1, 0.25),
            source=a + "less PHI leaving the clinic narrows audit scope; the cloud path keeps it.",
        ),
        "maintenance.rollouts_per_month": e(
            0.08, 0.17, 0.33, a + "one to four model updates a year (high-assurance)."
        ),
        **each(
            "maintenance.rollout_hours",
            on_device=(4, 8, 16),
            near_edge=(2, 6, 12),
            cloud=(1, 2, 4),
            hybrid=(4, 8, 16),
            source=a + "staged rollout with clinical sign-off per release.",
        ),
        "maintenance.rollback_share": e(0.0, 0.1, 0.25, a + "one rollout in ten rolled back."),
        **each(
            "maintenance.rollback_hours",
            on_device=(1, 3, 6),
            near_edge=(0.5, 2, 4),
            cloud=(0.2, 0.5, 1),
            hybrid=(1, 2, 5),
            source=a + "staff time to roll back to the previous signed model.",
        ),
        **each(
            "maintenance.interventions_per_site",
            on_device=(0.2, 0.5, 2),
            near_edge=(0.2, 0.5, 1.5),
            cloud=(0, 0.1, 0.5),
            hybrid=(0.2, 0.6, 2),
            source=a + "manual fixes per clinic per month.",
        ),
        "maintenance.cost_per_intervention": e(50, 100, 200, a + "IT support time per fix."),
        "accuracy.baseline_error_rate": e(
            0.01, 0.02, 0.04, a + "triage notes needing costly correction or follow-up."
        ),
        **each(
            "accuracy.error_rate",
            on_device=(0.008, 0.015, 0.03),
            near_edge=(0.007, 0.014, 0.028),
            cloud=(0.007, 0.013, 0.027),
            hybrid=(0.007, 0.013, 0.027),
            source=a + "AI assistance catches a share of omissions; validate against chart review.",
        ),
        "accuracy.cost_per_error": e(
            20, 50, 150, a + "staff time and follow-up per corrected note."
        ),
        **each(
            "accuracy.monitoring_per_month",
            on_device=(100, 250, 500),
            near_edge=(100, 200, 450),
            cloud=(80, 150, 350),
            hybrid=(150, 300, 600),
            source=a + "calibration and drift review under clinical governance.",
        ),
        "tco.device_hardware_cost": e(
            0,
            200,
            500,
            a + "extra for NPU-capable workstations; 0 on an existing Windows NPU fleet.",
        ),
        "tco.device_replacement_months": e(36, 48, 60, a + "workstation refresh cycle."),
        "tco.gateway_hardware_cost": e(
            1_500, 2_500, 5_000, a + "clinic inference box with encrypted storage."
        ),
        "tco.gateway_replacement_months": e(36, 48, 60, a + "clinic box refresh cycle."),
        **each(
            "tco.integration",
            on_device=(10_000, 20_000, 40_000),
            near_edge=(10_000, 18_000, 35_000),
            cloud=(8_000, 15_000, 30_000),
            hybrid=(12_000, 22_000, 45_000),
            source=a + "one-off build including EHR integration and privacy review.",
        ),
        **each(
            "tco.licence_per_device",
            on_device=(0, 3, 8),
            near_edge=(0, 2, 6),
            cloud=(0, 1, 3),
            hybrid=(0, 3, 8),
            source=a + "runtime, MDM or clinical software licences per device per month.",
        ),
        **each(
            "tco.tooling_per_month",
            on_device=(100, 250, 500),
            near_edge=(100, 200, 450),
            cloud=(80, 150, 350),
            hybrid=(150, 300, 600),
            source=a + "deployment, audit logging and device management tooling.",
        ),
        **each(
            "tco.support_hours_per_month",
            on_device=(12, 22, 45),
            near_edge=(10, 20, 40),
            cloud=(8, 16, 32),
            hybrid=(15, 26, 50),
            source=a + "support, diagnosis and model upkeep (labelling, retraining, review) "
            "hours per month after go-live.",
        ),
        "tco.support_hourly_rate": e(60, 85, 130, a + "loaded clinical IT cost per hour."),
        "tco.cloud_price_per_1000": e(
            2, 5, 12, a + "compliant managed inference endpoint per 1,000 requests."
        ),
        **each(
            "tco.bandwidth_per_site",
            on_device=(0, 0, 10),
            near_edge=(0, 0, 10),
            cloud=(10, 30, 80),
            hybrid=(0, 10, 30),
            source=a + "uplink upgrade per clinic to upload captured media.",
        ),
    }
    return RoiInputs(scenario=scenario, estimates=est, name="Healthcare: decision support")
