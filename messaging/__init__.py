"""Adapters to the outside world for notifications: SMS gateways and e-mail (issue 5).

Nothing here touches the database; the dispatcher in ``jobs`` reads the outbox and calls
these adapters, and inbound messages are turned into service calls by thin channel code.
"""
