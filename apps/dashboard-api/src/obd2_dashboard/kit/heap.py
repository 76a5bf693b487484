"""Garbage-collector settings for a long-running server process."""

import gc

# Young collections after this many new container objects (CPython's default: 700). Ingest
# allocates a few thousand per batch; at the default, a batch of 500 samples set off several
# collections, each also walking what the last ones kept.
YOUNG_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Moves everything built so far (modules, the app, its routes and models) out of the
    collector's sight and collects the young generation less often.

    The startup heap lives as long as the process: without this, every full collection walks
    hundreds of thousands of objects of FastAPI, pydantic and SQLAlchemy for nothing. Measured
    with the ingest benchmark: the API's CPU per 1000 samples fell by about a sixth.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
