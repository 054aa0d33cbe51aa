"""The farm as a service: the ``Farm`` domain object, its HTTP and MCP edges, and what runs them.

:mod:`~envfarm.serve.farm` holds the catalog and the live episodes and raises
:mod:`envfarm.core.errors` exceptions; :mod:`~envfarm.serve.app` maps them to
HTTP. Security, settings, metrics, logs, the router and the compose file live
beside them. This layer imports :mod:`envfarm.core` only.
"""
