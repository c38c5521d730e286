"""PostgreSQL (Aurora): users and the social graph."""
