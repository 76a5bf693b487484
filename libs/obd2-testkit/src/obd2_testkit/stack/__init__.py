"""The whole stack for tests and benchmarks: PostgreSQL, Redis, API and worker processes,
nginx, agents, viewers."""
