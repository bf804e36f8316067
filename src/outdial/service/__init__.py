"""Application services: what the API and the CLI do, over the store and the domain rules."""
