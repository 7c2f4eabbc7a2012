from services.monitor.db import models
from shared.migrations import run_env

run_env(models.Base.metadata, "monitor")
