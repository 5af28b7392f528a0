"""The durable spool: SQLite with group commits (:mod:`.store`), payloads in segment files
(:mod:`.segments`, :mod:`.payloads`), the queues the dispatcher reads (:mod:`.queues`), the
dedupe window (:mod:`.seen`), salvage and repair of damaged segments, and the admin commands."""
