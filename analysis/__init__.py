"""The read path: from stored rows to tables, charts, weekly reports and the verdict."""
