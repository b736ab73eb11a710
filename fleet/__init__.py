"""Fleet and models: sites, devices, hardware targets, enrollment, model registry, validation,
signing."""
