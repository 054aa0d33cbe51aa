"""envfarm: synthesized tool-use environments served as MCP servers over SQLite state."""

__version__ = "0.1.0"
