"""Clients of outside systems."""
