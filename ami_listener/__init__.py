"""ami_listener."""
