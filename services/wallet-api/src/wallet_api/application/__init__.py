"""Use cases: load a wallet under its lock, let the domain decide, save, update inline read models."""
