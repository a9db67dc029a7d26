"""Use cases: load an aggregate under its lock, let the domain decide, save, update inline read models."""
