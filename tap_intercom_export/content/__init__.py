"""Message data export: Intercom's per-statistic CSV files, one stream per file kind."""
