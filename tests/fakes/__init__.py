"""Local fakes of outside services (LLM providers), so tests need no network and no keys."""
