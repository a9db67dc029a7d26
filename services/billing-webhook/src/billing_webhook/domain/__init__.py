"""Billing's rules, with no I/O: the aggregates, their events, the errors they raise, and the shape
of what LemonSqueezy sends."""
