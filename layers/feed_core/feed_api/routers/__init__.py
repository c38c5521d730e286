"""One router per resource; each API function mounts the routers it serves."""
