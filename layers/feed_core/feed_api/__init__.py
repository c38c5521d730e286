"""HTTP layer of the feed platform: FastAPI routers, JWT auth and error mapping.

Shared by the API Lambda functions (through Mangum) and the local dev server. The domain package
`newsfeed` knows nothing of HTTP; this package translates between the two.
"""
