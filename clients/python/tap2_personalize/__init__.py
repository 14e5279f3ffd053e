"""Tap2 Personalize API client (standard library only, Python >= 3.9)."""

__version__ = "0.1.0"

from .client import DEFAULT_BASE_URL, Client, new_idempotency_key  # noqa: E402
from .errors import Tap2Error  # noqa: E402

__all__ = ["Client", "Tap2Error", "DEFAULT_BASE_URL", "new_idempotency_key", "__version__"]
