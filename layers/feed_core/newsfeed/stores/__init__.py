"""One adapter per store. Each module imports its client library only when used."""
