"""Registry service: enterprises, regions, annual indicators, cultivation pools, targets, imports."""

from pathlib import Path

from shared.services import ServiceDescriptor

SERVICE = ServiceDescriptor(
    name="registry",
    title="注册服务 (registry)",
    port_offset=1,
    app="services.registry.main:build_app",
    migrations=Path(__file__).parent / "migrations",
    contracts="services.registry.events.contracts",
    demo="services.registry.demo:load_demo",
    demo_order=100,  # last: its enterprises and indicators drive the other services' demo state
    demo_principals="services.registry.demo:demo_principals",
)
