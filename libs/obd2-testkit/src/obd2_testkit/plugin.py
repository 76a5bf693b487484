"""Rules every test in the repository keeps, loaded by the root ``conftest.py``.

A client, socket, transport or subprocess pipe left open is reported by Python only when the
garbage collector gets to it, which without help is at a random later moment, inside whichever
test happens to run then. Collecting after every test makes a leak fail the test that caused it,
every time, and ``PYTHONTRACEMALLOC=20`` then names the line that allocated it.
"""

import gc
from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The machine tests (tests/vm) take longest by far: started first, they run beside the rest
    # of the suite instead of after it.
    items.sort(key=lambda item: item.get_closest_marker("vm") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Everything imported and collected so far lives for the whole run: moved out of the
    # collector's sight, it costs nothing in the collection after each test.
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _leaks_fail_the_test_that_made_them() -> Iterator[None]:
    # Autouse fixtures of a plugin are set up first, so this one is torn down last: after the
    # test's own fixtures and its event loop are closed. pytest reports what the collection
    # finds (ResourceWarning, as errors) in this same teardown.
    yield
    gc.collect()
    # What survived is the run's to keep (module and session fixtures, caches): out of the next
    # collection's sight, so that each collection reads only what the next test allocates. A
    # whole-heap collection after every test took over a second each once the heap had grown.
    gc.freeze()
