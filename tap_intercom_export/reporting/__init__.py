"""Intercom's reporting data export: one stream per reporting dataset of the workspace."""
