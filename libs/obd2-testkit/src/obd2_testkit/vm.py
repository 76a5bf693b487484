"""A real Debian machine for tests: qemu with systemd as PID 1, reached over SSH on loopback.

The image is built once by ``tools/vm-image.sh`` (debootstrap of Debian 13 with the packages in
``tests/vm/image/packages.txt``) and cached outside the repository, under ``OBD2_VM_CACHE``
(default ``/var/cache/obd2-dashboard-vm``). Each machine boots a copy-on-write overlay of it, so
every test starts from the same disk and the image is never written.

qemu runs under software emulation (``-accel tcg``): this machine's ``/dev/kvm`` cannot boot a
stock kernel. Networking is qemu's user mode: the guest reaches the outside through the host (as
``10.0.2.2`` for the host's own loopback services), and only the ports a test names are forwarded,
each from ``127.0.0.1`` on the host. Nothing listens on another address.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from obd2_testkit import REPO
from obd2_testkit.ports import free_port

IMAGE_SCRIPT = REPO / "tools" / "vm-image.sh"
#: The address at which the guest reaches the host's loopback (qemu user networking).
HOST_FROM_GUEST = "10.0.2.2"


def cache_dir() -> Path:
    return Path(os.environ.get("OBD2_VM_CACHE", "/var/cache/obd2-dashboard-vm"))


def why_not_runnable() -> str | None:
    """Why a machine cannot be built or booted here, or None when it can."""
    if os.geteuid() != 0:
        return "building the image needs root (debootstrap, chroot)"
    for tool in ("debootstrap", "qemu-system-x86_64", "qemu-img", "ssh", "mkfs.ext4"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed (make install-test installs it)"
    return None


def build_image(log: Path) -> Path:
    """The cached image's directory, building it first if its key has no image yet."""
    with log.open("ab") as sink:
        result = subprocess.run(
            ["bash", str(IMAGE_SCRIPT), str(cache_dir())],
            stdout=subprocess.PIPE,
            stderr=sink,
            check=False,
            timeout=3600,
        )
    if result.returncode != 0:
        raise RuntimeError(f"tools/vm-image.sh failed (exit {result.returncode}); see {log}")
    return Path(result.stdout.decode().strip().splitlines()[-1])


@dataclass
class Machine:
    """One booted guest. ``forwards`` maps a guest TCP port to the host loopback port for it."""

    image: Path
    workdir: Path
    guest_ports: tuple[int, ...] = (22, 80, 443)
    memory_mb: int = 4096
    forwards: dict[int, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def key(self) -> Path:
        return self.image / "id_ed25519"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        overlay = self.workdir / "overlay.qcow2"
        overlay.unlink(missing_ok=True)
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(self.image / "disk.raw"),
                str(overlay),
            ],
            check=True,
        )
        for port in self.guest_ports:
            self.forwards[port] = free_port()
        hostfwd = ",".join(
            f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in self.forwards.items()
        )
        known_hosts = self.workdir / "known_hosts"
        host_key = (self.image / "host_key.pub").read_text().split()[:2]
        known_hosts.write_text(f"[127.0.0.1]:{self.forwards[22]} {' '.join(host_key)}\n")
        command = [
            "qemu-system-x86_64",
            "-accel", "tcg,thread=multi", "-cpu", "qemu64", "-smp", "2", "-m", str(self.memory_mb),
            "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=false",
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev", f"user,id=net0,{hostfwd}",
            "-device", "virtio-net-pci,netdev=net0",
            "-display", "none", "-monitor", "none",
            "-serial", f"file:{self.console_log}",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )

    def ssh_command(self, user: str = "root") -> list[str]:
        return [
            "ssh", "-p", str(self.forwards[22]), "-i", str(self.key),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
            "-o", f"UserKnownHostsFile={self.workdir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
            f"{user}@127.0.0.1",
        ]  # fmt: skip

    def run(
        self,
        script: str,
        *,
        user: str = "root",
        check: bool = True,
        timeout: float = 600,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``script`` with ``bash -euo pipefail`` on the guest; output is returned as text."""
        remote = f"bash -euo pipefail -c {shlex.quote(script)}"
        result = subprocess.run(
            [*self.ssh_command(user), remote],
            input=stdin.decode() if stdin is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"on the guest ({user}) exit {result.returncode}:\n$ {script}\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
            )
        return result

    def wait_for_ssh(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"qemu exited ({self.process.returncode}); see {self.console_log}"
                )
            probe = subprocess.run(
                [*self.ssh_command(), "true"], capture_output=True, timeout=60, check=False
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                tail = self.console_log.read_text(errors="replace")[-3000:]
                raise TimeoutError(f"no SSH after {timeout:.0f} s; console:\n{tail}")
            time.sleep(2)

    def reboot(self, timeout: float = 300) -> None:
        boot_id = self.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()
        subprocess.run(
            [*self.ssh_command(), "systemctl reboot"], capture_output=True, timeout=60, check=False
        )
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(3)
            try:
                self.wait_for_ssh(timeout=max(1.0, deadline - time.monotonic()))
                now = self.run("cat /proc/sys/kernel/random/boot_id", check=False).stdout.strip()
            except subprocess.TimeoutExpired:
                now = boot_id
            if now and now != boot_id:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the guest did not come back from its reboot")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            subprocess.run(
                [*self.ssh_command(), "systemctl poweroff"],
                capture_output=True,
                timeout=30,
                check=False,
            )
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None
