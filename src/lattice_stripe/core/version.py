"""The library's version, kept in the core so request headers can name it."""

__all__ = ["VERSION"]

VERSION = "0.1.0"
