"""RQ jobs and the periodic scheduler (issue 5): workers dispatch what the database holds."""
