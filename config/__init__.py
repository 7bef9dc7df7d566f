"""Settings from the environment, the root exception, and logging set-up."""

from certsms.config.errors import CertsmsError, ConfigError
from certsms.config.settings import DEFAULT_BASE_URL, Settings, load_settings

__all__ = ["DEFAULT_BASE_URL", "CertsmsError", "ConfigError", "Settings", "load_settings"]
