"""Logistics: computer vision at the dock (the seed's reference architecture 1).

Every default carries its source; "assumption:" marks a figure to replace with your own.
"""

from __future__ import annotations

from roi.engine import RoiInputs, Scenario

from ._build import e, each, plan_ramp


def build() -> RoiInputs:
    a = "assumption: "
    ramp, ramp_notes = plan_ramp(3)
    scenario = Scenario(
        sites=3,
        devices_per_site=6,
        gateways_per_site=2,
        annual_discount_rate=0.10,
        hybrid_on_device_share=0.2,
        hybrid_near_edge_share=0.8,
        hybrid_cloud_share=0.0,
        **ramp,
        notes={
            "sites": a + "an SMB operator piloting at its three busiest docks.",
            "devices_per_site": a + "six handheld scanners or dock cameras per site.",
            "gateways_per_site": a + "typical SMB dock, 2 gateways per site (one per dock bank).",
            "annual_discount_rate": a + "10 % cost of capital; use your finance team's rate.",
            "hybrid_on_device_share": (
                "seed, reference architecture 1: near-edge gateways run primary "
                "inference at the dock (80 % of events), selective on-device checks on "
                "handhelds (20 %); the cloud stores metrics and retrains, it serves no "
                "inference."
            ),
            **ramp_notes,
        },
    )
    est = {
        "latency.baseline_time_to_action_s": e(
            8,
            12,
            20,
            a + "manual label/damage check and keying an exception per pallet today; "
            "time it over one shift.",
        ),
        **each(
            "latency.time_to_action_s",
            on_device=(4, 6, 9),
            near_edge=(4, 6, 9),
            cloud=(6, 9, 16),
            hybrid=(4, 6, 9),
            source=a + "capture to action including the operator's confirmation; the cloud adds "
            "a ~250 KB image upload over the site WAN and queueing.",
        ),
        "latency.value_per_hour_saved": e(
            25, 32, 45, a + "loaded dock-worker cost per hour; replace with your payroll figure."
        ),
        "latency.events_per_device_per_day": e(
            80, 120, 200, a + "pallets or parcels checked per scanner/camera per calendar day."
        ),
        "power.device_watts": e(
            1, 2, 4, a + "extra draw of a mobile NPU while inferring on a handheld."
        ),
        "power.device_hours_per_day": e(8, 12, 16, a + "one to two shifts of scanning per day."),
        "power.gateway_watts": e(
            15,
            30,
            60,
            a + "Jetson-class module under sustained vision load; check the vendor's power modes.",
        ),
        "power.electricity_price_per_kwh": e(
            0.15, 0.25, 0.40, a + "commercial tariff range; use your electricity bill."
        ),
        "power.cooling_overhead_factor": e(
            1.0, 1.1, 1.3, a + "gateway in a ventilated comms cabinet; 1.0 means no cooling."
        ),
        "offline.outage_hours_per_site": e(
            1, 3, 8, a + "WAN outages per site per month; take them from router or ISP logs."
        ),
        "offline.revenue_lost_per_outage_hour": e(
            80,
            200,
            600,
            a + "throughput delayed or lost per site while inspection and exception logging stop.",
        ),
        **each(
            "offline.completes_offline",
            on_device=(0.85, 0.95, 1.0),
            near_edge=(0.85, 0.95, 1.0),
            cloud=(0.0, 0.0, 0.1),
            hybrid=(0.85, 0.95, 1.0),
            source=a + "local inference keeps working on the site LAN (power or LAN failures are "
            "not covered); cloud inference stops with the WAN; the dock hybrid's two tiers are "
            "both local.",
        ),
        **each(
            "privacy.data_leaving_gb_per_site",
            on_device=(0.05, 0.2, 1.0),
            near_edge=(0.05, 0.2, 1.0),
            cloud=(5, 8.8, 15),
            hybrid=(0.05, 0.2, 1.0),
            source="derived: 6 devices x 120 events/day x 30.4 days x 400 KB image = 8.8 GB "
            "streamed to the cloud; local placements (the dock hybrid included: gateway plus "
            "handhelds) send events plus low-confidence samples.",
        ),
        "privacy.egress_price_per_gb": e(
            0.0,
            0.05,
            0.15,
            a + "blended cloud ingestion and storage per GB on a wired uplink; 0 if unmetered.",
        ),
        "privacy.annual_compliance_cost": e(
            1_000,
            4_000,
            12_000,
            a + "share of audit and privacy work attributable to dock camera footage.",
        ),
        **each(
            "privacy.compliance_reduction",
            on_device=(0.1, 0.3, 0.5),
            near_edge=(0.1, 0.3, 0.5),
            cloud=(0.0, 0.0, 0.05),
            hybrid=(0.1, 0.3, 0.5),
            source=a + "keeping footage on site removes part of the retention and transfer "
            "controls; streaming it keeps them.",
        ),
        "maintenance.rollouts_per_month": e(
            0.5, 1, 2, a + "monthly model updates, as answered in the wizard."
        ),
        **each(
            "maintenance.rollout_hours",
            on_device=(2, 4, 10),
            near_edge=(1, 3, 8),
            cloud=(0.5, 1, 2),
            hybrid=(2, 4, 10),
            source=a + "staff time per staged rollout: app packaging for handhelds, fewer "
            "targets for gateways, one endpoint for the cloud, two paths for hybrid.",
        ),
        "maintenance.rollback_share": e(0.0, 0.1, 0.25, a + "one rollout in ten rolled back."),
        **each(
            "maintenance.rollback_hours",
            on_device=(1, 2, 6),
            near_edge=(0.5, 1, 4),
            cloud=(0.1, 0.5, 1),
            hybrid=(0.5, 1.5, 4),
            source=a + "staff time to roll back to the previous signed model.",
        ),
        **each(
            "maintenance.interventions_per_site",
            on_device=(0.3, 1, 3),
            near_edge=(0.2, 0.5, 2),
            cloud=(0, 0.1, 0.5),
            hybrid=(0.3, 0.6, 2),
            source=a + "manual fixes per site per month (stuck device, re-enrolment, cabling).",
        ),
        "maintenance.cost_per_intervention": e(
            40, 80, 200, a + "a remote session or a short visit by local staff."
        ),
        "accuracy.baseline_error_rate": e(
            0.005, 0.01, 0.02, a + "share of events where a damage or label miss costs money."
        ),
        **each(
            "accuracy.error_rate",
            on_device=(0.004, 0.008, 0.014),
            near_edge=(0.004, 0.007, 0.012),
            cloud=(0.0035, 0.0065, 0.011),
            hybrid=(0.004, 0.0072, 0.0124),
            source=a + "AI-assisted miss rate: smaller INT8 models on handhelds miss more, the "
            "largest cloud model least; the dock hybrid is 80 % gateway, 20 % handheld "
            "(0.8 x near-edge + 0.2 x on-device); validate on your own footage.",
        ),
        "accuracy.cost_per_error": e(
            8, 20, 60, a + "average claim, relabel or re-handling cost of a miss."
        ),
        **each(
            "accuracy.monitoring_per_month",
            on_device=(50, 150, 400),
            near_edge=(50, 120, 300),
            cloud=(30, 80, 200),
            hybrid=(80, 180, 450),
            source=a + "drift and accuracy monitoring; harder without streaming, two paths "
            "for hybrid.",
        ),
        "tco.device_hardware_cost": e(
            150, 350, 800, a + "extra cost of an NPU-capable handheld over the current scanner."
        ),
        "tco.device_replacement_months": e(24, 36, 48, a + "rugged handheld refresh cycle."),
        "tco.gateway_hardware_cost": e(
            800, 1_500, 3_000, a + "Jetson-class box with enclosure, storage and PoE switch port."
        ),
        "tco.gateway_replacement_months": e(36, 48, 60, a + "embedded gateway refresh cycle."),
        **each(
            "tco.integration",
            on_device=(8_000, 15_000, 30_000),
            near_edge=(6_000, 12_000, 25_000),
            cloud=(4_000, 8_000, 15_000),
            hybrid=(8_000, 16_000, 32_000),
            source=a + "one-off build: mobile packaging, gateway provisioning, cloud endpoint; "
            "the dock hybrid builds both the gateway and the handheld path.",
        ),
        **each(
            "tco.licence_per_device",
            on_device=(0, 2, 5),
            near_edge=(0, 1, 3),
            cloud=(0, 0, 1),
            hybrid=(0, 1, 3),
            source=a + "runtime or MDM licences per device per month; many runtimes are free.",
        ),
        **each(
            "tco.tooling_per_month",
            on_device=(100, 250, 600),
            near_edge=(100, 200, 500),
            cloud=(50, 100, 250),
            hybrid=(150, 300, 700),
            source=a + "deployment and fleet-management tooling per month.",
        ),
        **each(
            "tco.support_hours_per_month",
            on_device=(15, 25, 50),
            near_edge=(12, 22, 45),
            cloud=(10, 18, 35),
            hybrid=(18, 28, 55),
            source=a + "support, diagnosis and model upkeep (labelling, retraining, review) "
            "hours per month after go-live.",
        ),
        "tco.support_hourly_rate": e(50, 75, 120, a + "loaded technical staff cost per hour."),
        "tco.cloud_price_per_1000": e(
            0.5,
            1.5,
            4.0,
            a + "managed vision inference endpoint per 1,000 images; check your "
            "provider's price list.",
        ),
        **each(
            "tco.bandwidth_per_site",
            on_device=(0, 0, 10),
            near_edge=(0, 0, 10),
            cloud=(20, 60, 150),
            hybrid=(0, 0, 10),
            source=a + "uplink upgrade per site per month needed to stream images; none for "
            "events only.",
        ),
    }
    return RoiInputs(scenario=scenario, estimates=est, name="Logistics: dock vision")
