"""Operations files (systemd, nginx, Prometheus, compose) and their tests."""
