"""The composition root: settings read once at the edge (`settings`), and every adapter and
service built and wired in one place (`root`)."""
