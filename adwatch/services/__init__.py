"""Application services: what CLI commands and web views call."""
