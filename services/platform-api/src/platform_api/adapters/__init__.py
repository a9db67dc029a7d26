"""Clients of other systems: Chainabit (partners); execution-proxy arrives with runs."""
