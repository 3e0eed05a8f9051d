"""Transports behind the core's ports, and a recording fake.

stdlib (sync) and asyncio (async), the clients' defaults, need only the
standard library; urllib3 (sync) and aiohttp (async) need their extras. Each
real adapter lives in its own module so importing one never imports another's
library.
"""
