"""ORM models of the notification service (schema `notification`)."""

from __future__ import annotations

from shared.backbone import Backbone
from shared.db import make_base

Base = make_base("notification")
backbone = Backbone("notification", Base.metadata)
