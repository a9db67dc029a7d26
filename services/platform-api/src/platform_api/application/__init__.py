"""Use cases (catalogue.py) and queries (queries.py)."""
