"""Imports of existing logs (Torque CSV, generic CSV, GPX) through the ingest path."""
