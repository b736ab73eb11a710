"""Field service: offline triage and guided repair (the seed's reference architecture 2).

Every default carries its source; "assumption:" marks a figure to replace with your own.
"""

from __future__ import annotations

from roi.engine import RoiInputs, Scenario

from ._build import e, each, plan_ramp


def build() -> RoiInputs:
    a = "assumption: "
    ramp, ramp_notes = plan_ramp(2)
    scenario = Scenario(
        sites=2,
        devices_per_site=10,
        gateways_per_site=10,
        annual_discount_rate=0.10,
        hybrid_on_device_share=0.85,
        hybrid_near_edge_share=0.15,
        hybrid_cloud_share=0.0,
        **ramp,
        notes={
            "sites": a + "two service depots (a 'site' here is a depot and its technicians).",
            "devices_per_site": a + "ten technicians per depot, one tablet each.",
            "gateways_per_site": a + "near-edge for field service is a truck-mounted unit "
            "(playbook), one per van.",
            "annual_discount_rate": a + "10 % cost of capital; use your finance team's rate.",
            "hybrid_on_device_share": (
                "seed, reference architecture 2: on-device-first (85 % of events) with "
                "the truck-mounted near-edge unit running heavier models on site (15 "
                "%)."
            ),
            **ramp_notes,
        },
    )
    est = {
        "latency.baseline_time_to_action_s": e(
            900, 1_200, 1_800, a + "time from arriving at the equipment to a diagnosis today."
        ),
        **each(
            "latency.time_to_action_s",
            on_device=(840, 1_020, 1_500),
            near_edge=(840, 1_020, 1_500),
            cloud=(900, 1_080, 1_700),
            hybrid=(840, 1_000, 1_500),
            source=a + "guided diagnosis saves about three minutes a job; cloud waits for "
            "signal at some sites.",
        ),
        "latency.value_per_hour_saved": e(55, 75, 100, a + "loaded technician cost per hour."),
        "latency.events_per_device_per_day": e(
            3, 4, 6, a + "jobs per technician per calendar day (about 5-6 per working day)."
        ),
        "power.device_watts": e(1, 2, 3, a + "extra tablet draw while running inference."),
        "power.device_hours_per_day": e(0.2, 0.5, 1, a + "minutes of inference per job."),
        "power.gateway_watts": e(10, 20, 40, a + "truck-mounted embedded unit."),
        "power.electricity_price_per_kwh": e(
            0.15, 0.25, 0.40, a + "commercial tariff range; vans charge at the depot."
        ),
        "power.cooling_overhead_factor": e(1.0, 1.0, 1.1, a + "no active cooling."),
        "offline.outage_hours_per_site": e(
            10, 30, 80, a + "technician-hours per depot per month without usable signal."
        ),
        "offline.revenue_lost_per_outage_hour": e(
            5,
            15,
            40,
            a + "repeat visits and delays attributable to diagnosing without "
            "connectivity, per hour offline.",
        ),
        **each(
            "offline.completes_offline",
            on_device=(0.8, 0.9, 1.0),
            near_edge=(0.6, 0.8, 0.95),
            cloud=(0.0, 0.0, 0.1),
            hybrid=(0.8, 0.9, 1.0),
            source=a + "on-device works anywhere; a van unit only near the van; cloud needs "
            "signal.",
        ),
        **each(
            "privacy.data_leaving_gb_per_site",
            on_device=(0.01, 0.05, 0.2),
            near_edge=(0.01, 0.05, 0.2),
            cloud=(0.5, 1.2, 3),
            hybrid=(0.05, 0.2, 0.6),
            source="derived: 10 tablets x 4 jobs/day x 30.4 days x ~1 MB of photos = 1.2 GB "
            "to the cloud; local placements upload structured findings only.",
        ),
        "privacy.egress_price_per_gb": e(1, 3, 8, a + "business cellular data cost per GB."),
        "privacy.annual_compliance_cost": e(
            0, 1_000, 3_000, a + "customer-site photo handling; low for equipment data."
        ),
        **each(
            "privacy.compliance_reduction",
            on_device=(0.1, 0.3, 0.5),
            near_edge=(0.1, 0.3, 0.5),
            cloud=(0, 0, 0.05),
            hybrid=(0.05, 0.2, 0.4),
            source=a + "fewer customer-site photos stored centrally.",
        ),
        "maintenance.rollouts_per_month": e(
            0.25, 0.33, 0.5, a + "quarterly model updates, as answered in the wizard."
        ),
        **each(
            "maintenance.rollout_hours",
            on_device=(2, 4, 8),
            near_edge=(4, 8, 16),
            cloud=(0.5, 1, 2),
            hybrid=(3, 5, 10),
            source=a + "app release through MDM; van units updated at the depot.",
        ),
        "maintenance.rollback_share": e(0.0, 0.1, 0.25, a + "one rollout in ten rolled back."),
        **each(
            "maintenance.rollback_hours",
            on_device=(1, 2, 6),
            near_edge=(2, 4, 8),
            cloud=(0.1, 0.5, 1),
            hybrid=(1, 2.5, 6),
            source=a + "staff time to roll back to the previous signed model.",
        ),
        **each(
            "maintenance.interventions_per_site",
            on_device=(0.5, 1, 3),
            near_edge=(1, 2, 5),
            cloud=(0, 0.2, 1),
            hybrid=(0.5, 1.2, 3),
            source=a + "manual fixes per depot per month (re-install, van unit reset).",
        ),
        "maintenance.cost_per_intervention": e(40, 80, 150, a + "technician or IT time per fix."),
        "accuracy.baseline_error_rate": e(
            0.05, 0.08, 0.12, a + "jobs needing a second visit because of a wrong diagnosis."
        ),
        **each(
            "accuracy.error_rate",
            on_device=(0.04, 0.065, 0.1),
            near_edge=(0.035, 0.06, 0.09),
            cloud=(0.035, 0.06, 0.09),
            hybrid=(0.035, 0.06, 0.09),
            source=a + "guided repair avoids a share of repeat visits; validate on your jobs.",
        ),
        "accuracy.cost_per_error": e(
            80, 150, 300, a + "cost of a repeat visit (travel plus technician time)."
        ),
        **each(
            "accuracy.monitoring_per_month",
            on_device=(30, 80, 200),
            near_edge=(30, 80, 200),
            cloud=(20, 50, 150),
            hybrid=(50, 100, 250),
            source=a + "drift signals from post-job feedback.",
        ),
        "tco.device_hardware_cost": e(
            0,
            150,
            400,
            a + "extra for NPU-capable tablets at the next refresh; 0 if current tablets qualify.",
        ),
        "tco.device_replacement_months": e(24, 36, 48, a + "tablet refresh cycle."),
        "tco.gateway_hardware_cost": e(
            600, 1_200, 2_500, a + "truck-mounted embedded unit with power conditioning."
        ),
        "tco.gateway_replacement_months": e(36, 48, 60, a + "in-vehicle unit refresh cycle."),
        **each(
            "tco.integration",
            on_device=(6_000, 12_000, 25_000),
            near_edge=(10_000, 20_000, 40_000),
            cloud=(4_000, 8_000, 15_000),
            hybrid=(8_000, 15_000, 30_000),
            source=a + "one-off build: offline-first app, van units, or a cloud endpoint.",
        ),
        **each(
            "tco.licence_per_device",
            on_device=(0, 1, 3),
            near_edge=(0, 2, 5),
            cloud=(0, 0, 1),
            hybrid=(0, 1, 3),
            source=a + "runtime or MDM licences per device per month.",
        ),
        **each(
            "tco.tooling_per_month",
            on_device=(50, 150, 400),
            near_edge=(100, 250, 600),
            cloud=(50, 100, 250),
            hybrid=(100, 200, 500),
            source=a + "deployment and fleet-management tooling per month.",
        ),
        **each(
            "tco.support_hours_per_month",
            on_device=(10, 18, 35),
            near_edge=(14, 24, 45),
            cloud=(8, 14, 28),
            hybrid=(12, 22, 40),
            source=a + "support, diagnosis and model upkeep (labelling, retraining, review) "
            "hours per month after go-live.",
        ),
        "tco.support_hourly_rate": e(50, 75, 120, a + "loaded technical staff cost per hour."),
        "tco.cloud_price_per_1000": e(
            1, 3, 8, a + "managed multimodal inference endpoint per 1,000 requests."
        ),
        **each(
            "tco.bandwidth_per_site",
            on_device=(0, 0, 10),
            near_edge=(0, 0, 10),
            cloud=(20, 50, 120),
            hybrid=(0, 15, 40),
            source=a + "larger cellular data plans per depot to upload photos.",
        ),
    }
    return RoiInputs(scenario=scenario, estimates=est, name="Field service: offline triage")
