"""Rendering without a running Asterisk: placeholders, channel-variable names, secrets."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from acikkapi.settings import load_settings
from telephony import channel_vars
from telephony.asterisk import Layout
from telephony.inventory import demo_inventory
from telephony.render import RenderOptions, render_to, template_values
from telephony.secrets import ensure_secrets


def _render(tmp_path: Path, hours: str = "24/7") -> Path:
    settings = load_settings(
        {"ACIKKAPI_INSTANCE_DIR": str(tmp_path), "ACIKKAPI_SERVICE_HOURS": hours}
    )
    inventory = demo_inventory()
    secrets = ensure_secrets(settings, [p.extension for p in inventory.phones] + ["trunk"], {})
    layout = Layout(
        "chroot",
        tmp_path,
        tmp_path,
        tmp_path,
        tmp_path,
        tmp_path,
        tmp_path,
        tmp_path,
        "/etc/asterisk/asterisk.conf",
    )
    values = template_values(settings, inventory, secrets, layout, RenderOptions())
    out = tmp_path / "etc"
    render_to(out, values)
    return out


def test_dialplan_uses_only_channel_vars_names(tmp_path: Path) -> None:
    text = (_render(tmp_path) / "extensions.conf").read_text()
    used = set(re.findall(r"\b(AK_[A-Z0-9_]+)", text))
    assert used <= set(channel_vars.ALL), used - set(channel_vars.ALL)
    assert f"Set(__{channel_vars.CALL_ID}=${{UNIQUEID}})" in text
    assert "@@" not in text


def test_every_listener_on_loopback(tmp_path: Path) -> None:
    out = _render(tmp_path)
    assert "bind = 127.0.0.1:5060" in (out / "pjsip.conf").read_text()
    manager = (out / "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in manager
    assert "system" not in re.findall(r"^write = (.*)$", manager, re.M)[0]
    for writes in re.findall(r"^write = (.*)$", manager, re.M):
        assert "system" not in writes and "command" not in writes


def test_service_hours_mode(tmp_path: Path) -> None:
    text = (_render(tmp_path, "09:00-24:00") / "extensions.conf").read_text()
    assert "GotoIfTime(09:00-23:59,*,*,*,Europe/Istanbul?open)" in text


def test_secrets_are_private_and_stable(tmp_path: Path) -> None:
    settings = load_settings({"ACIKKAPI_INSTANCE_DIR": str(tmp_path)})
    first = ensure_secrets(settings, ["1001"], {})
    again = ensure_secrets(settings, ["1001", "1002"], {})
    assert first.sip_password("1001") == again.sip_password("1001")
    path = tmp_path / "secrets" / "asterisk.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    override = ensure_secrets(settings, ["1001"], {"ACIKKAPI_SIP_SECRET_1001": "from-env"})
    assert override.sip_password("1001") == "from-env"
    assert "from-env" not in path.read_text()


@pytest.mark.parametrize("name", ["queues.conf", "pjsip.conf"])
def test_english_agents_only_in_english_queue(tmp_path: Path, name: str) -> None:
    text = (_render(tmp_path) / "queues.conf").read_text()
    english = text.split("[cagri-merkezi-en]")[1]
    assert "PJSIP/1002" not in english and "PJSIP/1001" in english
