"""pydantic models of every config file: data and field rules only, no I/O."""
