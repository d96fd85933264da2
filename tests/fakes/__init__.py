"""Fakes of what the tests may fake: LLM providers (chat completions)."""
