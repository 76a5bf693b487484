"""What every suite in this repository shares: loopback ports, and the rules every test keeps.

Importable from any suite and from ``bench/`` (``tests/`` is on the path of both).
"""
