"""Storage engines behind the Backend protocol."""
