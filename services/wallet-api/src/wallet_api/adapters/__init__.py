"""Clients of other services and outside systems."""
