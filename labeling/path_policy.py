"""Which server paths a page may read or write: any on loopback for one user, only allowed roots when shared.

A path typed into a page (a CSV's path, an images folder, an export destination, a mirror folder) is a path on
the machine running the app. On 127.0.0.1 that is the user's own machine; once the app listens on a network,
anybody who reaches it would read and write the server's files, so paths must then lie inside `allowed_paths`
(none at all when it is empty: uploads and downloads only). The database's own files are never a page's to
touch. The CLI does not go through this: it keeps full freedom.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labeling.errors import InputError

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(address: str | None) -> bool:
    """Whether a bind address serves this machine only; an empty one binds every interface."""
    name = (address or "").strip().strip("[]").lower()
    if not name:
        return False
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to a public interface


@dataclass(frozen=True)
class PathPolicy:
    """`roots` None: any path (loopback); a tuple: only paths inside one of them (empty: none at all)."""

    roots: tuple[Path, ...] | None
    protected: tuple[Path, ...] = ()  # the database and its WAL
    address: str = ""

    @property
    def shared(self) -> bool:
        return self.roots is not None

    @property
    def allows_paths(self) -> bool:
        return self.roots is None or bool(self.roots)

    def default_folder(self) -> Path:
        """Where a page suggests writing: the working directory, or the first allowed root when shared."""
        return Path(".") if not self.roots else self.roots[0]

    def check(self, path: str | Path, what: str) -> Path:
        """`path` if a page may use it for `what` ("the CSV list", "the export", ...); else InputError."""
        given = Path(path).expanduser()
        resolved = given.resolve()  # symlinks followed: a link inside a root cannot lead outside it
        if resolved in self.protected:
            raise InputError(f"{given} is one of the database's own files: choose another path for {what}.")
        if self.roots is None:
            return given
        if not self.roots:
            raise InputError(
                f"Paths on the server are off while the app is shared on the network (address "
                f"{self.address or 'all interfaces'}): upload or download instead, or ask whoever "
                "runs it to list the folders pages may use in allowed_paths (config.yaml)."
            )
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            allowed = ", ".join(str(root) for root in self.roots)
            raise InputError(
                f"{given} is outside the folders this shared app may use for {what} ({allowed}): "
                "give a path inside one of them."
            )
        return given


def path_policy(address: str | None, allowed_paths: Sequence[str], db_path: str | Path) -> PathPolicy:
    """The policy for an app bound to `address` with the `allowed_paths` setting."""
    database = Path(db_path).expanduser().resolve()
    protected = (database, database.with_name(database.name + ".wal"))
    if is_loopback(address):
        return PathPolicy(None, protected, str(address or ""))
    roots = tuple(Path(root).expanduser().resolve() for root in allowed_paths if str(root).strip())
    return PathPolicy(roots, protected, str(address or ""))
