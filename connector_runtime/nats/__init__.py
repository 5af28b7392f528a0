"""Everything NATS: the connection (:mod:`.connection`), the ``nats`` target
(:mod:`.target`, with its subjects and message encoding in :mod:`.binding`), and
``delivery.spool: nats`` (:mod:`.spool`, :mod:`.stream`)."""
