"""Everything NATS: the connection (:mod:`.connection`), the ``nats`` target
(:mod:`.target`), and ``delivery.spool: nats`` (:mod:`.spool`, :mod:`.stream`)."""
