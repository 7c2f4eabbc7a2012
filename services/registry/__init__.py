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
    demo_order=100,  # after the others' seeds: its enterprises drive the other services' demo state
    # after evaluation's demo history (110): the latest year's indicators (evaluated with the titles held) and pools
    demo_steps=((115, "services.registry.demo:load_indicators"),),
    demo_principals="services.registry.demo:demo_principals",
)
