"""Per-process resources of a worker: settings, database engine, Redis client, gateways.

RQ's default worker forks a work horse per job; everything here is created lazily and keyed
by process id, so a horse never reuses a connection it inherited from its parent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.db import engine_from_settings, make_session_factory
from acikkapi.settings import Settings, load_settings

if TYPE_CHECKING:
    from messaging.email_smtp import SmtpEmailSender
    from messaging.sms_gateway import SmsGateway


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    pid: int = field(default_factory=os.getpid)
    _redis: Redis | None = None
    _sms: SmsGateway | None = None
    _email: SmtpEmailSender | None = None

    def redis(self) -> Redis:
        """The process's Redis client (its connection pool reconnects after an outage)."""
        if self._redis is None:
            self._redis = redis_connection(self.settings)
        return self._redis

    def sms_gateway(self) -> SmsGateway:
        if self._sms is None:
            from messaging.sms_factory import build_sms_gateway

            self._sms = build_sms_gateway(self.settings)
        return self._sms

    def email_sender(self) -> SmtpEmailSender:
        if self._email is None:
            from messaging.email_smtp import SmtpEmailSender

            self._email = SmtpEmailSender(self.settings)
        return self._email

    def close(self) -> None:
        for adapter in (self._sms, self._email):
            if adapter is not None:
                adapter.close()
        self._sms = self._email = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        self.engine.dispose()


_current: Runtime | None = None


def runtime() -> Runtime:
    """This process's resources, created on first use (and again after a fork)."""
    global _current
    if _current is None or _current.pid != os.getpid():
        settings = load_settings()
        engine = engine_from_settings(settings)
        _current = Runtime(settings=settings, engine=engine, sessions=make_session_factory(engine))
    return _current


def redis_connection(settings: Settings) -> Redis:
    """A Redis client for RQ with bounded time-outs (a dead Redis is reported, not waited on)."""
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=15,
        retry_on_timeout=True,
    )
