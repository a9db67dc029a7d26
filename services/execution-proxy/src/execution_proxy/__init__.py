"""execution-proxy: AI execution against providers, on credits or the caller's own key."""
