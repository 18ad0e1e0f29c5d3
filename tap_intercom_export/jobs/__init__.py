"""The export-job engine shared by the message and the reporting export: windows, job lifecycle, archives."""
