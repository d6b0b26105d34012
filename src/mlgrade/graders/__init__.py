"""The graders: the LLM (with structured output and the only OpenAI client) and the offline one, plus a fake for tests."""
