"""Built-in targets, each registered as a plugin (``http``, ``stdout``, ``file``)."""
