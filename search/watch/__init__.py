"""Watching a campaign: status, report, export, comparison and the dashboard, all read from the storage."""
