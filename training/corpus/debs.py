"""Fetching, checking and unpacking pinned Debian packages (``apt-get download``, ``dpkg-deb``)."""

import hashlib
import subprocess
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _deb_name(package: str, version: str) -> str:
    # apt-get download names files pkg_version_arch.deb with ':' of the epoch written as %3a.
    return f"{package}_{version.replace(':', '%3a')}_"


def download(packages: dict[str, str], deb_dir: Path) -> dict[str, dict]:
    """Download each ``package=version`` into ``deb_dir`` unless already there.

    Parameters
    ----------
    packages : dict of str to str
        Debian package name -> exact version.
    deb_dir : Path
        Cache directory for the ``.deb`` files.

    Returns
    -------
    dict
        package -> ``{"version", "file", "sha256", "bytes"}``.

    Raises
    ------
    ValueError
        If apt cannot fetch a pinned version (gone from the archive, or no ``apt-get update``).
    """
    deb_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg, ver in packages.items():
        found = sorted(deb_dir.glob(_deb_name(pkg, ver) + "*.deb"))
        if not found:
            res = subprocess.run(
                ["apt-get", "download", f"{pkg}={ver}"], cwd=deb_dir, capture_output=True, text=True
            )
            found = sorted(deb_dir.glob(_deb_name(pkg, ver) + "*.deb"))
            if res.returncode != 0 or not found:
                msg = (res.stderr.strip().splitlines() or ["no .deb written"])[-1]
                raise ValueError(
                    f"package {pkg}={ver}: apt-get download failed ({msg}); the pinned version may "
                    "have left the archive: run apt-get update, or pin a new version in "
                    "training/corpus/sources.py"
                )
        deb = found[0]
        out[pkg] = {
            "version": ver,
            "file": deb.name,
            "sha256": sha256_file(deb),
            "bytes": deb.stat().st_size,
        }
    return out


def unpack(debs: dict[str, dict], deb_dir: Path, root: Path) -> None:
    """Unpack every downloaded ``.deb`` into ``root/<package>`` with ``dpkg-deb -x``."""
    for pkg, info in debs.items():
        dest = root / pkg
        stamp = dest / ".sha256"
        if stamp.exists() and stamp.read_text() == info["sha256"]:
            continue
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb_dir / info["file"]), str(dest)], check=True)
        stamp.write_text(info["sha256"])


def installed_version(package: str) -> str | None:
    """Installed version of a Debian package, or None when it is not installed."""
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True, text=True
    )
    if res.returncode != 0 or not res.stdout.startswith("install ok installed"):
        return None
    return res.stdout.split()[-1]


def ensure_tools(tools: dict[str, str]) -> dict[str, str]:
    """Install the pinned tool packages with apt-get unless present; return what is installed.

    A tool already installed at another version is used as it is, and its version is recorded.

    Raises
    ------
    ValueError
        If apt-get cannot install a tool.
    """
    missing = [f"{p}={v}" for p, v in tools.items() if installed_version(p) is None]
    if missing:
        res = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            msg = (res.stderr.strip().splitlines() or ["?"])[-1]
            raise ValueError(f"tools {' '.join(missing)}: apt-get install failed ({msg})")
    return {p: installed_version(p) for p in tools}
