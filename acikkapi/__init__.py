"""acikkapi."""
