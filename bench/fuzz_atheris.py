"""A longer, coverage-guided fuzzing run of the Auth0 body parser with atheris (libFuzzer).

hypothesis (``tests/fuzz``) explores inputs built from a model of valid bodies; atheris
mutates bytes guided by which branches of ``parse.py`` they reach (the strict and lenient
decoders, format detection, each refusal). Both check the same properties, with the same
code (``check_any_input`` in ``tests/fuzz/test_fuzz_parser.py``): only ``ParseError``
escapes, and every accepted record is an element of the body as the stdlib ``json`` reads
it, its ``data`` a byte-exact slice.

Not part of ``make test``. atheris is not a dependency of the project; install it first:

    .venv/bin/pip install atheris
    .venv/bin/python bench/fuzz_atheris.py -max_total_time=600 bench/out/fuzz-corpus

Arguments are libFuzzer's (``-runs=N``, ``-max_total_time=S``, ``-max_len=B``, a corpus
folder to read and extend). The corpus is seeded with valid bodies in every format. A
failure stops the run, prints the traceback and writes the input to ``crash-<sha1>``.
msgspec is a C extension and is not instrumented: coverage guides through ``parse.py``
only, and msgspec itself is reached by the mutations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports():
    from connector_runtime_auth0 import parse  # noqa: F401  (instrumented for coverage)

from tests.fuzz.test_fuzz_parser import check_any_input  # noqa: E402

SEEDS = (
    b'{"log_id":"1","data":{"type":"s","date":"2025-03-14T09:26:53.589Z","user_id":"u"}}\n'
    b'{"log_id":"2","data":{"type":"f","n":9007199254740993}}\n',
    b'[{"log_id":"1","data":{"type":"s"}},{"data":{"type":"fp","log_id":"2"}}]',
    b'{"logs":[{"log_id":"1","data":{"type":"s","":1,"":2}}]}',
    b'{\n  "log_id": "1",\n  "data": {"type": "sapi", "e": 1e400}\n}\n',
    b'{"log_id":null,"data":{"type":"s","log_id":"in","x":"\xe2\x80\xa8"}}\r\n',
)


def test_one_input(data: bytes) -> None:
    check_any_input(data)


def main() -> None:
    args = list(sys.argv)
    corpus = next((Path(a) for a in args[1:] if not a.startswith("-")), None)
    if corpus is not None:
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(SEEDS):
            path = corpus / f"seed-{i}"
            if not path.exists():
                path.write_bytes(seed)
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
