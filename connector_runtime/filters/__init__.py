"""Event filters: the CESQL v1 engine (:mod:`.cesql`), the Subscriptions API dialects
(:mod:`.subscription` validates and compiles a filter list into the nodes of
:mod:`.dialects`) and the built-in plugin that applies ``spec.filters`` (:mod:`.builtin`)."""
