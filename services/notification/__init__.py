"""Notification service: service commissioners, assignment, notifications, policy push."""

from pathlib import Path

from shared.services import ServiceDescriptor, StandIn

SERVICE = ServiceDescriptor(
    name="notification",
    title="通知服务 (notification)",
    port_offset=4,
    app="services.notification.main:build_app",
    migrations=Path(__file__).parent / "migrations",
    contracts="services.notification.events.contracts",
    demo="services.notification.demo:load_demo",
    demo_order=30,
    # (31) take up finance's demo policies before registry's enterprises arrive; last (125): wait until it has taken
    # up the evaluations of the demo's reports (gap advice)
    demo_steps=((31, "services.notification.demo:await_policies"), (125, "services.notification.demo:settle")),
    demo_principals="services.notification.demo:demo_principals",
    standins=(
        StandIn(
            name="sms+smtp",
            module="services.notification.fake_providers",
            ports={"--sms-port": 91, "--smtp-port": 25},
            env={"ZJTX_SMS_GATEWAY_URL": "http://127.0.0.1:{sms_port}", "ZJTX_SMTP_PORT": "{smtp_port}"},
        ),
    ),
)
