"""ORM models of the registry service (schema `registry`)."""

from __future__ import annotations

from shared.backbone import Backbone
from shared.db import make_base

Base = make_base("registry")
backbone = Backbone("registry", Base.metadata)
