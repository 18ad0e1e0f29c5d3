"""Contact events and event summaries, read contact by contact within Intercom's rate limit."""
