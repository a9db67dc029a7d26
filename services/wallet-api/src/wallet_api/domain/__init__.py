"""The wallet's rules, with no I/O: the aggregate, its events, and the errors it raises."""
