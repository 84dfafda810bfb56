"""The one-machine runtime: a folder for a bucket, SQLite for tables and the event bus."""
