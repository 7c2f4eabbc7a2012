"""Evaluation service: versioned rule sets, scoring, the recognition workflow, simulations."""

from pathlib import Path

from shared.services import ServiceDescriptor

SERVICE = ServiceDescriptor(
    name="evaluation",
    title="评价服务 (evaluation)",
    port_offset=2,
    app="services.evaluation.main:build_app",
    migrations=Path(__file__).parent / "migrations",
    contracts="services.evaluation.events.contracts",
    demo="services.evaluation.demo:load_demo",
    demo_order=10,
    # after registry's demo (100): the history needs its enterprises, which arrive through its events
    # and (117) once registry's demo reported the indicators: wait until they are evaluated
    demo_steps=((110, "services.evaluation.demo:load_history"), (117, "services.evaluation.demo:settle")),
)
