"""Singer tap for Intercom message data exports and contact events."""
