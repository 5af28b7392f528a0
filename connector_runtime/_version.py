"""The runtime's version: the one place it is written.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``), the package re-exports it as
``connector_runtime.__version__``, and the HTTP target's User-Agent carries it. A leaf
module, so anything may import it without an import cycle.
"""

__version__ = "0.1.0"
