"""The feed domain: users and their graph, posts, home timelines, fan-out and the scheduled
jobs. It knows nothing of Lambda, HTTP, the environment or any store driver: services take
their stores through the protocols in `ports`, and adapters (`feed_adapters`) implement them.
"""
