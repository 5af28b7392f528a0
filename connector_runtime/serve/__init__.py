"""Serving: the Tornado application (:mod:`.app`), connections that answer every request
(:mod:`.connection`), deadlines (:mod:`.deadlines`), and the process: listening, TLS, signals,
workers (:mod:`.process`)."""
