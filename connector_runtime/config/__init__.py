"""Configuration: a manifest's YAML → ``${...}`` substitution → JSON Schema checks → frozen
dataclasses (:mod:`.model`); secrets marked in schemas are redacted (:mod:`.secrets`)."""
