"""The services of a deployment, as each declares itself.

``shared/`` names no service. Each service declares a :class:`ServiceDescriptor` named ``SERVICE`` in its
package's ``__init__.py`` and lists it under the entry-point group ``zjtx.services`` in ``pyproject.toml``::

    [project.entry-points."zjtx.services"]
    registry = "services.registry:SERVICE"

The CLI, the dev stack, the migrations and the tests find the services here, so adding a service touches no
file in ``shared/``. A descriptor holds only names and numbers: reading it imports nothing of the service but
its package's ``__init__``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

GROUP = "zjtx.services"
# Dev stack and container ports: a service listens on ``PORT_BASE + port_offset``.
PORT_BASE = 8000


@dataclass(frozen=True)
class StandIn:
    """A local stand-in for an outside provider (payment gateway, SMS, SMTP) that the dev stack starts.

    ``ports`` maps a command-line option (``--sms-port``) to its offset from the dev stack's port base;
    ``env`` is what the services are told, each value formatted with the ports by option name, underscored
    (``"http://127.0.0.1:{sms_port}"``).
    """

    name: str
    module: str
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)

    def port_values(self, port_base: int) -> dict[str, int]:
        return {option.lstrip("-").replace("-", "_"): port_base + offset for option, offset in self.ports.items()}

    def argv(self, port_base: int) -> list[str]:
        args = ["-m", self.module]
        for option, offset in self.ports.items():
            args += [option, str(port_base + offset)]
        return args

    def environment(self, port_base: int) -> dict[str, str]:
        values = self.port_values(port_base)
        return {name: template.format(**values) for name, template in self.env.items()}


@dataclass(frozen=True)
class DemoPrincipal:
    """A token the dev stack prints after the demo load: who, where, and what it is for (Chinese label)."""

    role: str
    region: str
    label: str
    uscc: str | None = None
    sub: str | None = None


@dataclass(frozen=True)
class ServiceDescriptor:
    """What a service tells the rest of the system about itself.

    ``app`` is the ASGI app factory and ``demo`` the demo loader (``async def load_demo(settings, size)``),
    each as ``"module:attribute"``; ``contracts`` the module of its event contracts; ``demo_principals`` names a
    function returning the service's
    :class:`DemoPrincipal` list (tokens worth printing once its demo data is loaded). ``demo_order`` orders the
    demo loaders (the one that publishes the events the others consume goes last).
    """

    name: str
    title: str
    port_offset: int
    app: str
    migrations: Path
    demo: str | None = None
    demo_order: int = 0
    # further demo loaders, each (order, ``"module:attribute"``), run among all services' loaders by order: a
    # step that needs the events of a later service's demo (evaluation's history needs registry's enterprises)
    demo_steps: tuple[tuple[int, str], ...] = ()
    demo_principals: str | None = None
    standins: tuple[StandIn, ...] = ()
    # Publishes events on its own topic (``zjtx.<name>.events``).
    publishes: bool = True
    # The module holding the service's event contracts: ``PUBLISHED`` and ``CONSUMED``, each a
    # ``dict[event type, pydantic model]`` (producer models ``extra="forbid"``, consumer models tolerant).
    contracts: str | None = None
    # ``"module:function"`` adding the service's own ``zjtx`` subcommands: called with the CLI's argparse
    # subparsers (keep that module light; import the work when the command runs).
    cli: str | None = None

    @property
    def port(self) -> int:
        return PORT_BASE + self.port_offset

    @property
    def package(self) -> str:
        return self.app.partition(":")[0].rsplit(".", 1)[0]


def load_attribute(ref: str) -> Any:
    """The object ``"package.module:attribute"`` names."""
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


@lru_cache
def descriptors() -> tuple[ServiceDescriptor, ...]:
    """Every installed service, ordered by port."""
    found: list[ServiceDescriptor] = []
    for ep in entry_points(group=GROUP):
        descriptor = ep.load()
        if not isinstance(descriptor, ServiceDescriptor):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a ServiceDescriptor")
        if descriptor.name != ep.name:
            raise ValueError(f"entry point {ep.name} declares service {descriptor.name!r}")
        found.append(descriptor)
    if not found:
        raise RuntimeError(f"没有已安装的服务 (no services installed under entry points {GROUP!r}); pip install -e .")
    found.sort(key=lambda d: d.port_offset)
    return tuple(found)


def service_names() -> tuple[str, ...]:
    return tuple(d.name for d in descriptors())


def descriptor(name: str) -> ServiceDescriptor:
    for d in descriptors():
        if d.name == name:
            return d
    raise KeyError(f"未知服务 (unknown service): {name}")
