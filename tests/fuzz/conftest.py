"""Hypothesis profiles for the fuzz tests.

- ``ci`` (the default): a bounded, derandomized run, so ``make test`` sees the same cases
  every time and the fuzz tests together take well under half a minute;
- ``long``: many more examples from a random seed, for ``make fuzz``.

Pick one with ``HYPOTHESIS_PROFILE=long`` (or hypothesis' own ``--hypothesis-profile``, which
wins). Under ``long`` the fuzz tests have no pytest-timeout limit (one property takes
minutes). Neither profile keeps an example database: a failure prints the falsifying example
and a ``@reproduce_failure`` blob, and that is what goes into a regular test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

CI_EXAMPLES = 150
LONG_EXAMPLES = 20_000

# Bodies are built from large strategies and every HTTP example is a real request, so the
# size and speed health checks would only complain about what the tests mean to do.
_QUIET = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example)

settings.register_profile(
    "ci",
    max_examples=CI_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "long",
    max_examples=LONG_EXAMPLES,
    deadline=None,
    derandomize=False,
    database=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--hypothesis-profile", None):
        settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    long_run = settings.get_current_profile_name() != "ci"
    for item in items:
        if here not in item.path.parents:
            continue
        # Bodies with long strings make long reprs; hypothesis warns, and warnings are errors.
        item.add_marker(pytest.mark.filterwarnings("ignore:Generating overly large repr"))
        if long_run:
            item.add_marker(pytest.mark.timeout(0))
