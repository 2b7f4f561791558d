"""Telephony infrastructure shared by the AGI server, the AMI listener and the CLI:
channel-variable names, Asterisk provisioning and configuration rendering."""
