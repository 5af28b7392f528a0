"""The webhook side of a source: :class:`~connector_runtime.sources.handler.SourceHandler`
(the status contract every source inherits) and the request guard (allow-lists, admission)."""
