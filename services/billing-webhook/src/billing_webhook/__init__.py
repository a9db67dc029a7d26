"""billing-webhook: LemonSqueezy checkouts, and webhook deliveries that become credits."""
