"""Choosing the SMS gateway from the settings (issue 5)."""

from __future__ import annotations

from acikkapi.settings import Settings, SettingsError
from messaging.sms_gateway import SmsGateway


def build_sms_gateway(settings: Settings) -> SmsGateway:
    """The gateway named by ``settings.sms_gateway``: ``file`` (embedded default), ``http``
    or ``smpp``. Raises :class:`SettingsError` when the chosen gateway lacks its
    configuration (no URL, no SMPP system id), so a worker fails at start, not per message.
    """
    if settings.sms_gateway == "file":
        from messaging.sms_file import FileSmsGateway

        return FileSmsGateway(settings.sms_file_dir)
    if settings.sms_gateway == "http":
        from messaging.sms_http import HttpSmsGateway

        if not settings.sms_http_url:
            raise SettingsError("ACIKKAPI_SMS_GATEWAY=http needs ACIKKAPI_SMS_HTTP_URL")
        try:
            return HttpSmsGateway(
                settings.sms_http_url, settings.sms_http_username, settings.sms_http_password
            )
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
    if settings.sms_gateway == "smpp":
        from messaging.sms_smpp import SmppConfig, SmppSmsGateway

        if not settings.smpp_system_id:
            raise SettingsError("ACIKKAPI_SMS_GATEWAY=smpp needs ACIKKAPI_SMPP_SYSTEM_ID")
        try:
            return SmppSmsGateway(SmppConfig.from_settings(settings))
        except ValueError as exc:
            raise SettingsError(f"ACIKKAPI_SMPP_*: {exc}") from exc
    raise SettingsError(f"ACIKKAPI_SMS_GATEWAY={settings.sms_gateway!r}: unknown gateway")
