"""Observability: per-connector counters (:mod:`.stats`, a leaf every layer bumps), the
Prometheus collector that reads the whole runtime (:mod:`.metrics`), and JSON logs
(:mod:`.logs`)."""
