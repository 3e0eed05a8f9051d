"""Transports behind the core's ports: urllib3 (sync), aiohttp (async), and a recording fake.

Each real adapter lives in its own module so importing one never imports the
other's library.
"""
