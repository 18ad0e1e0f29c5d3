"""`python -m fake_intercom`: the `fake-intercom` command."""

from fake_intercom.server import main

main()
