"""Profiles and the social graph: follow, unfollow, block, mute, and what each does to feeds."""
