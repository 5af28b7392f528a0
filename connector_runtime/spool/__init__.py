"""The durable spool: SQLite with group commits (:mod:`.store`, :mod:`.jobs`), its tables and
format version (:mod:`.schema`, :mod:`.tables`), payloads in segment files (:mod:`.segments`,
:mod:`.payloads`), the queues the dispatcher reads (:mod:`.queues`, :mod:`.progress`), the
dedupe window (:mod:`.seen`), salvage and repair of damaged segments, and the admin commands."""
