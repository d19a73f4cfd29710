"""Your own CLIP and data: one set of options for every CLIP notebook, checked before any work, and the record
of what a real-model run measured (``scope.json``) that the real-model scoreboard is scored from."""

from cliplab.real.options import DATA_OPTIONS, RealOptions, RealPathError, resolve_device, validate
from cliplab.real.scope import Scope, competence

__all__ = ["DATA_OPTIONS", "RealOptions", "RealPathError", "Scope", "competence", "resolve_device",
           "validate"]
