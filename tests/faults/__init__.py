"""Fault injection against the real stores: a TCP proxy in front of one store at a time."""
