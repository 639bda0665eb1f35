"""vtpivot: the importable package behind the app's lookups and search commands."""
