"""From the queue to the target: one dispatcher per connector (:mod:`.dispatcher`) making
delivery attempts (:mod:`.attempt`) with retries, backoff and dead letters."""
