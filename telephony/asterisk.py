"""Asterisk provisioning and process control.

Two layouts, chosen by :func:`detect_layout`:

* **system** — an Asterisk >= 20 is installed on the host (a production Debian/Ubuntu
  server). It is run with our own ``asterisk.conf`` (``asterisk -C``) whose directories point
  into ``<instance>/asterisk/``; nothing under ``/etc/asterisk`` is touched.
* **chroot** — no usable system Asterisk (Debian 12 has none): a private Debian sid root is
  built once with ``debootstrap`` at ``settings.asterisk_root`` (outside the clone, cached
  across runs and CI) and Asterisk runs inside it with ``chroot``. The chroot shares the
  host's network namespace, so every loopback listener is reachable from the host.

The root is built under a lock file into a temporary directory and renamed into place only
after a completion marker is written, so a half-built root is never used: an interrupted
build is discarded and rebuilt on the next ``install``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from acikkapi.settings import Settings

MIN_SYSTEM_VERSION = 20
SUITE = "sid"
ROOT_PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm", "tzdata")
HOST_PACKAGES = ("debootstrap", "sip-tester", "espeak-ng", "sox")
MARKER_NAME = ".acikkapi-root.json"
MARKER_VERSION = 1


class AsteriskError(RuntimeError):
    """Provisioning or control of Asterisk failed; the message says what to do."""


@dataclass(frozen=True)
class Layout:
    """Where Asterisk lives and how to run it.

    All ``*_dir`` paths are host paths (usable from Python on the host). ``pbx_conf`` is
    the ``asterisk.conf`` path as Asterisk itself sees it (inside the chroot if any).
    """

    mode: Literal["chroot", "system"]
    root: Path
    etc_dir: Path
    sounds_dir: Path
    spool_dir: Path
    log_dir: Path
    run_dir: Path
    lib_dir: Path
    pbx_conf: str

    @property
    def monitor_dir(self) -> Path:
        """Host path of MixMonitor recordings (``AK_RECORDING`` is relative to it)."""
        return self.spool_dir / "monitor"

    @property
    def messages_dir(self) -> Path:
        """Host path of voice messages left by callers."""
        return self.spool_dir / "acikkapi-messages"

    def inside(self, host_path: Path) -> str:
        """``host_path`` as Asterisk sees it (strip the chroot prefix)."""
        if self.mode == "system":
            return str(host_path)
        return "/" + str(host_path.relative_to(self.root))

    def command(self, *args: str) -> list[str]:
        """An ``asterisk`` command line for this layout (``chroot`` prefix, ``-C`` conf)."""
        base = ["asterisk", "-C", self.pbx_conf, *args]
        if self.mode == "chroot":
            return ["chroot", str(self.root), *base]
        return base


def _run(
    cmd: Sequence[str], *, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise AsteriskError(f"command not found: {cmd[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise AsteriskError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if check and proc.returncode != 0:
        raise AsteriskError(
            f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}"
        )
    return proc


def system_asterisk_version() -> str | None:
    """Version string of a host Asterisk >= 20 (``asterisk -V``), else ``None``."""
    if shutil.which("asterisk") is None:
        return None
    try:
        out = _run(["asterisk", "-V"], timeout=10, check=False).stdout.strip()
    except AsteriskError:
        return None
    match = re.search(r"Asterisk\s+(?:certified/)?(\d+)", out)
    if match and int(match.group(1)) >= MIN_SYSTEM_VERSION:
        return out
    return None


def instance_asterisk_dir(settings: Settings) -> Path:
    """``<instance>/asterisk``: rendered config (``etc/``) and, in system mode, state."""
    return settings.instance_dir / "asterisk"


def detect_layout(settings: Settings) -> Layout:
    """The layout for these settings: system mode when a host Asterisk >= 20 exists
    (or ``asterisk_root`` is ``/``), otherwise the private chroot at ``asterisk_root``."""
    root = settings.asterisk_root
    if str(root) == "/" or system_asterisk_version() is not None:
        base = instance_asterisk_dir(settings)
        return Layout(
            mode="system",
            root=Path("/"),
            etc_dir=base / "etc",
            sounds_dir=Path("/usr/share/asterisk/sounds"),
            spool_dir=base / "spool",
            log_dir=base / "log",
            run_dir=base / "run",
            lib_dir=base / "lib",
            pbx_conf=str(base / "etc" / "asterisk.conf"),
        )
    return Layout(
        mode="chroot",
        root=root,
        etc_dir=root / "etc" / "asterisk",
        sounds_dir=root / "usr" / "share" / "asterisk" / "sounds",
        spool_dir=root / "var" / "spool" / "asterisk",
        log_dir=root / "var" / "log" / "asterisk",
        run_dir=root / "run" / "asterisk",
        lib_dir=root / "var" / "lib" / "asterisk",
        pbx_conf="/etc/asterisk/asterisk.conf",
    )


# --- provisioning -------------------------------------------------------------


def missing_host_packages(packages: Sequence[str] = HOST_PACKAGES) -> list[str]:
    """Debian packages from ``packages`` that are not installed on the host."""
    missing = []
    for pkg in packages:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
        )
        if proc.stdout.strip() != "install ok installed":
            missing.append(pkg)
    return missing


def ensure_host_packages(packages: Sequence[str] = HOST_PACKAGES, log: bool = True) -> None:
    """Install the missing ``packages`` with apt-get (root only); no-op when all present."""
    missing = missing_host_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise AsteriskError(
            f"Debian packages needed: {' '.join(missing)} (run as root or apt-get install them)"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    if log:
        print(f"[acikkapi] apt-get install {' '.join(missing)}", flush=True)
    if os.environ.get("AK_APT_UPDATED") != "1":
        subprocess.run([*apt, "update", "-qq"], env=env, check=True)
    subprocess.run(
        [*apt, "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, check=True
    )


@contextmanager
def _locked(lock_path: Path, timeout: float = 900) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AsteriskError(
                        f"could not lock {lock_path} within {timeout:.0f} s"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def root_is_complete(root: Path) -> bool:
    """True when ``root`` carries a valid completion marker for the current recipe."""
    marker = root / MARKER_NAME
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        data.get("version") == MARKER_VERSION
        and data.get("suite") == SUITE
        and sorted(data.get("packages", [])) == sorted(ROOT_PACKAGES)
        and (root / "usr" / "sbin" / "asterisk").exists()
    )


def build_root(root: Path, *, log: bool = True) -> bool:
    """Make sure a complete Debian sid root with Asterisk exists at ``root``.

    Returns ``True`` when it was built now, ``False`` when a complete one already existed.
    Serialised with ``<root>.lock``; builds into ``<root>.build``, writes the marker, then
    renames, so readers see either no root or a complete one. An incomplete root (no
    marker) is moved aside and removed.
    """
    if root_is_complete(root):
        return False
    with _locked(root.with_name(root.name + ".lock")):
        if root_is_complete(root):
            return False
        ensure_host_packages(("debootstrap",), log=log)
        build = root.with_name(root.name + ".build")
        for stale in (build, root):
            if stale.exists():
                if log:
                    print(f"[acikkapi] removing incomplete Asterisk root {stale}", flush=True)
                _remove_tree(stale)
        if log:
            print(
                f"[acikkapi] building Debian {SUITE} root with Asterisk at {root} "
                "(debootstrap, about a minute and 500 MB)",
                flush=True,
            )
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(ROOT_PACKAGES)}",
            SUITE,
            str(build),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            raise AsteriskError(f"debootstrap failed ({proc.returncode}):\n{tail}")
        marker = {
            "version": MARKER_VERSION,
            "suite": SUITE,
            "packages": list(ROOT_PACKAGES),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (build / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        os.replace(build, root)
        return True


def _remove_tree(path: Path) -> None:
    # A chroot may hold mount points if someone mounted /proc; never follow them.
    mounts = Path("/proc/mounts")
    if mounts.exists():
        for line in mounts.read_text().splitlines():
            target = line.split()[1]
            if target.startswith(str(path) + "/"):
                raise AsteriskError(f"{target} is mounted inside {path}; unmount it first")
    shutil.rmtree(path)


def prepare_runtime(layout: Layout) -> None:
    """Create the run/log/spool directories Asterisk needs, owned by user ``asterisk``."""
    dirs = [
        layout.run_dir,
        layout.log_dir,
        layout.spool_dir,
        layout.monitor_dir,
        layout.messages_dir,
        layout.lib_dir,
        layout.log_dir / "cel-custom",  # cel_custom.conf writes Master.csv here
        layout.log_dir / "cdr-csv",
    ]
    uid, gid = _asterisk_ids(layout)
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, uid, gid)


def _asterisk_ids(layout: Layout) -> tuple[int, int]:
    passwd = layout.root / "etc" / "passwd"
    for line in passwd.read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "asterisk":
            return int(parts[2]), int(parts[3])
    raise AsteriskError(f"no user 'asterisk' in {passwd}")


# --- process control ----------------------------------------------------------


def cli(layout: Layout, command: str, *, timeout: float = 30, check: bool = True) -> str:
    """Run one Asterisk CLI command over the control socket and return its output."""
    proc = _run(layout.command("-rx", command), timeout=timeout, check=False)
    out = proc.stdout
    if check and (proc.returncode != 0 or "Unable to connect to remote asterisk" in out):
        raise AsteriskError(f"asterisk -rx {command!r}: {(out + proc.stderr).strip()}")
    return out


def is_running(layout: Layout) -> bool:
    """True when an Asterisk answers on this layout's control socket."""
    if not (layout.run_dir / "asterisk.ctl").exists():
        return False
    try:
        proc = _run(layout.command("-rx", "core show version"), timeout=10, check=False)
    except AsteriskError:
        return False
    return proc.returncode == 0 and "Asterisk" in proc.stdout


def start(layout: Layout, *, boot_timeout: float = 60) -> bool:
    """Start Asterisk (daemonised, as user ``asterisk``) and wait until fully booted.

    Returns ``False`` when it was already running (nothing done), ``True`` when started.
    """
    if is_running(layout):
        return False
    prepare_runtime(layout)
    proc = _run(layout.command("-U", "asterisk", "-G", "asterisk"), timeout=30, check=False)
    if proc.returncode != 0:
        raise AsteriskError(f"asterisk did not start: {(proc.stderr or proc.stdout).strip()}")
    wait_fully_booted(layout, boot_timeout)
    return True


def wait_fully_booted(layout: Layout, timeout: float = 60) -> None:
    """Block until ``core waitfullybooted`` answers, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            proc = _run(
                layout.command("-rx", "core waitfullybooted"),
                timeout=max(5.0, timeout),
                check=False,
            )
            last = (proc.stdout + proc.stderr).strip()
            if proc.returncode == 0 and "fully booted" in proc.stdout.lower():
                return
        except AsteriskError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise AsteriskError(
        f"Asterisk not fully booted within {timeout:.0f} s ({last}); see {layout.log_dir}"
    )


def stop(layout: Layout, *, timeout: float = 30) -> bool:
    """Stop Asterisk now (``core stop now``) and wait for the control socket to go.

    Returns ``False`` when it was not running.
    """
    if not is_running(layout):
        return False
    cli(layout, "core stop now", check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(layout):
            return True
        time.sleep(0.3)
    raise AsteriskError(f"Asterisk still answers {timeout:.0f} s after 'core stop now'")


def reload(layout: Layout) -> str:
    """Reload every module's configuration (``core reload``) and the dialplan."""
    out = cli(layout, "core reload")
    out += cli(layout, "dialplan reload")
    return out


def status(layout: Layout) -> str:
    """Human-readable status: version, uptime, endpoints and queues (raises if down)."""
    if not is_running(layout):
        raise AsteriskError("Asterisk is not running")
    parts = [
        f"layout: {layout.mode} ({layout.root})",
        cli(layout, "core show version").strip(),
        cli(layout, "core show uptime").strip(),
        cli(layout, "pjsip show endpoints").rstrip(),
        cli(layout, "queue show").rstrip(),
    ]
    return "\n\n".join(parts) + "\n"
