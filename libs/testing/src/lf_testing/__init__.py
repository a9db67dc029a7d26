"""Testing kit: real PostgreSQL and RabbitMQ per test, dev tokens, service processes, fake servers."""
