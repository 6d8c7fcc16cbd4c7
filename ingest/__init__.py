"""The write path: from wire bytes (SMTP, HTTPS, files) to rows in DuckDB."""
