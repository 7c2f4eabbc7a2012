"""ORM models of the finance service (schema `finance`)."""

from __future__ import annotations

from shared.backbone import Backbone
from shared.db import make_base

Base = make_base("finance")
backbone = Backbone("finance", Base.metadata)
