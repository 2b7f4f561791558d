"""``install`` and ``render``: the two idempotent steps before Asterisk can start.

* :func:`install` — host packages, the private Debian root (or the system Asterisk),
  prompt audio and hold music. Safe to repeat; quick when everything is in place.
* :func:`render` — configuration from the templates, inventory and secrets, deployed to
  the directory Asterisk reads (``<root>/etc/asterisk`` in the chroot layout). Safe to
  repeat; run ``acikkapi asterisk reload`` (or restart) for a running Asterisk to see it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from acikkapi.settings import Settings
from telephony import asterisk
from telephony.asterisk import Layout
from telephony.inventory import Inventory, load_inventory
from telephony.prompts import PromptResult, install_hold_music, install_prompts
from telephony.render import TRUNK_ENDPOINT, RenderOptions, render_to, template_values
from telephony.secrets import ensure_secrets

DIST_BACKUP = Path("usr/share/acikkapi/asterisk-etc.dist")


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install` found or did."""

    layout: Layout
    root_built: bool
    prompts: PromptResult
    hold_music_written: bool


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render` wrote: the rendered files and where Asterisk reads them."""

    layout: Layout
    rendered_dir: Path
    files: tuple[Path, ...]
    inventory: Inventory


def install(settings: Settings, *, log: bool = True) -> InstallResult:
    """Make Asterisk runnable for ``settings``: after it returns, the layout's ``asterisk``
    binary exists, user ``asterisk`` exists, and prompts and hold music are in place."""
    layout = asterisk.detect_layout(settings)
    built = False
    if layout.mode == "chroot":
        asterisk.ensure_host_packages(asterisk.HOST_PACKAGES, log=log)
        built = asterisk.build_root(layout.root, log=log)
        backup = layout.root / DIST_BACKUP
        if not backup.exists() and layout.etc_dir.exists():
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(layout.etc_dir, backup, symlinks=True)
    else:
        asterisk.ensure_host_packages(("espeak-ng", "sox", "sip-tester"), log=log)
    prompts = install_prompts(layout.sounds_dir, layout.root, settings.instance_dir / "prompts")
    moh = install_hold_music(layout.root / "usr/share/asterisk/moh/acikkapi")
    asterisk.prepare_runtime(layout)
    return InstallResult(layout, built, prompts, moh)


def render(
    settings: Settings,
    options: RenderOptions | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> RenderResult:
    """Render the configuration into ``<instance>/asterisk/etc`` and deploy it.

    Guarantees: secrets exist for every phone and AMI user (generated once, 0600); the
    deployed directory holds exactly the rendered files (Debian's sample files, which would
    load demo dialplans and users, are removed; a copy is kept under
    ``<root>/usr/share/acikkapi/asterisk-etc.dist``); files are readable by group asterisk
    only. Does not reload a running Asterisk.
    """
    opts = options or RenderOptions.from_environ(
        settings.telephony_overrides if environ is None else environ
    )
    layout = asterisk.detect_layout(settings)
    inventory = load_inventory(settings)
    endpoints = [p.extension for p in inventory.phones] + [TRUNK_ENDPOINT]
    secrets = ensure_secrets(settings, endpoints, environ)
    values = template_values(settings, inventory, secrets, layout, opts)
    rendered_dir = asterisk.instance_asterisk_dir(settings) / "etc"
    files = render_to(rendered_dir, values)
    gid = _asterisk_gid(layout)
    if layout.mode == "chroot":
        _deploy(rendered_dir, layout.etc_dir, gid)
    else:
        for path in [rendered_dir, *files]:
            os.chown(path, 0, gid)
    return RenderResult(layout, rendered_dir, tuple(files), inventory)


def _asterisk_gid(layout: Layout) -> int:
    for line in (layout.root / "etc" / "group").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "asterisk":
            return int(parts[2])
    raise asterisk.AsteriskError(f"no group 'asterisk' in {layout.root}/etc/group")


def _deploy(source: Path, target: Path, gid: int) -> None:
    target.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in source.glob("*.conf")}
    for entry in target.iterdir():
        if entry.name not in wanted:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for name in sorted(wanted):
        dst = target / name
        tmp = dst.with_suffix(".conf.tmp")
        shutil.copyfile(source / name, tmp)
        os.chown(tmp, 0, gid)
        os.chmod(tmp, 0o640)
        os.replace(tmp, dst)
    os.chown(target, 0, gid)
    os.chmod(target, 0o750)
