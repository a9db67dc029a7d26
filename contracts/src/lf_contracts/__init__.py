"""Contracts shared across services: error codes and integration events."""
