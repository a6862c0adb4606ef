"""Packages as the image's package managers record them: plain values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

DPKG, RPM, APK, PIP, NPM = "dpkg", "rpm", "apk", "pip", "npm"
MANAGERS = (DPKG, RPM, APK, PIP, NPM)


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package: who installed it, what it is, the paths its manager lists.

    ``where`` tells apart copies of one name that a manager keeps in several places (pip's
    site-packages, npm's node_modules folders); it is empty for system managers.
    """

    manager: str
    name: str
    version: str
    arch: str | None
    paths: tuple[str, ...] = field(default=(), compare=False, repr=False)
    where: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What stays the same when the package is upgraded."""
        return (self.manager, self.name, self.arch or "", self.where)


@dataclass(frozen=True, slots=True)
class PackageChange:
    """A package a layer added, removed or changed (``old``: the version before a change)."""

    package: Package
    old: str | None = None


@dataclass(frozen=True, slots=True)
class LayerPackages:
    """What one layer did to the package set, against the layer below."""

    added: tuple[PackageChange, ...] = ()
    removed: tuple[PackageChange, ...] = ()
    changed: tuple[PackageChange, ...] = ()
    owned_bytes: int = 0  # bytes of the layer's regular files that a package lists

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """A package of the final image with the layer that installed it and what it weighs there."""

    package: Package
    layer: int  # the layer that installed it or last changed its version
    files: int  # listed paths that exist in the final image (each file once)
    size: int  # bytes of those that are regular files


@dataclass(frozen=True, slots=True)
class PackageReport:
    """Every package of the final image, and each layer's changes to the set."""

    installed: tuple[InstalledPackage, ...]
    layers: tuple[LayerPackages, ...]
    warnings: tuple[str, ...] = ()
    owner: dict[str, int] = field(default_factory=dict, compare=False, repr=False)  # final path -> index in installed
