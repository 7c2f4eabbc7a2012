"""Monitor service: the read side over every event — the event archive and its jurisdiction-scoped feed, replay,
the programme's reporting read models (targets, funnel, money, forecast), the annual report and the pages."""

from pathlib import Path

from shared.services import ServiceDescriptor

SERVICE = ServiceDescriptor(
    name="monitor",
    title="监测服务 (monitor)",
    port_offset=5,
    app="services.monitor.main:build_app",
    migrations=Path(__file__).parent / "migrations",
    contracts="services.monitor.events.contracts",
    publishes=False,  # reads every topic, publishes none (replay writes only to the replay topics)
    cli="services.monitor.app.commands:add_commands",  # zjtx replay SERVICE [--from DATE]
    demo_principals="services.monitor.demo:demo_principals",  # tokens for its pages, printed by make run
    demo_steps=((130, "services.monitor.demo:settle"),),  # last: wait until it archived the demo's evaluations
)
