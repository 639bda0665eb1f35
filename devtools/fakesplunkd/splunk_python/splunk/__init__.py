"""Fake `splunk` package (tests only): see ../README.md."""
