"""Public library environment."""
