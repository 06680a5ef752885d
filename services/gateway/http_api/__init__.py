"""The HTTP/JSON adapters: the aiohttp app factory, its routes, the door for HTTP, and the OpenAPI document."""
