"""The synthesis pipeline (``envfarm.generator``): corpus -> environments -> scenarios."""
