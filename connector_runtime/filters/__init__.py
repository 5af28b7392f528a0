"""Event filters: the CESQL v1 engine (:mod:`.cesql`), the Subscriptions API dialects
(:mod:`.subscription`) and the built-in plugin that applies ``spec.filters`` (:mod:`.builtin`)."""
