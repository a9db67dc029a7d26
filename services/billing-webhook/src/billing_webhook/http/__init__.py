"""HTTP routes: parse, call a command or a query, answer."""
