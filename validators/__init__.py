"""Scoring (``envfarm.validators``): trajectory replay and sandboxed rule checks."""
