"""A fake Intercom API on loopback: `build()` one, `start()` it, point `api_url` at `.url`."""

from fake_intercom.server import FakeIntercom, build

__all__ = ["FakeIntercom", "build"]
