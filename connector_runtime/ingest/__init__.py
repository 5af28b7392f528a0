"""What happens to a request's events after parsing: filter → dedupe → the ack policy's
hand-off (:mod:`.pipeline`, :mod:`.dedupe`, :mod:`.handoffs`)."""
