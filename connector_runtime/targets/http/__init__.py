"""The ``http`` target (:mod:`.target`) and its own HTTP/1.1 client (:mod:`.client`)."""
