"""Finance service: subsidy policies, budgets, entitlements, disbursement, ledger."""

from pathlib import Path

from shared.services import ServiceDescriptor, StandIn

SERVICE = ServiceDescriptor(
    name="finance",
    title="资金服务 (finance)",
    port_offset=3,
    app="services.finance.main:build_app",
    migrations=Path(__file__).parent / "migrations",
    contracts="services.finance.events.contracts",
    demo="services.finance.demo:load_demo",
    demo_order=20,
    # after evaluation's demo history (110) and registry's indicators (115): approvals of the entitlements its
    # recognitions created, paid while evaluation evaluates the reports
    demo_steps=((116, "services.finance.demo:load_payments"),),
    standins=(
        StandIn(
            name="payment-gateway",
            module="services.finance.fake_gateway",
            ports={"--port": 90},
            env={"ZJTX_PAYMENT_GATEWAY_URL": "http://127.0.0.1:{port}"},
        ),
    ),
)
