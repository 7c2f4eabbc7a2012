"""ORM models of the evaluation service (schema `evaluation`)."""

from __future__ import annotations

from shared.backbone import Backbone
from shared.db import make_base

Base = make_base("evaluation")
backbone = Backbone("evaluation", Base.metadata)
