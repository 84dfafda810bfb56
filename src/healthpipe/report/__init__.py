"""The email report: model, charts (PNG), text and HTML rendering, MIME assembly."""
