"""govctl's settings, resolved in one place.

Precedence, highest first: command-line flags > ``GOVCTL_*`` environment variables >
the settings file (the file ``$GOVCTL_CONFIG`` names, else the nearest ``govctl.toml`` in the
current directory or above it: :func:`find_file`) > gcloud's active configuration
(``core/project``, ``run/region``, read from its files; gcloud is never run) > defaults.
``govctl config show`` prints each value with its source; ``govctl init`` writes a commented
file with every key.

The parts, each importing only those listed before it:

- :mod:`~govctl.config.keys`: the setting keys, with their parsers and defaults;
- :mod:`~govctl.config.settings`: the typed settings, :class:`Config` and its sections;
- :mod:`~govctl.config.sources`: where values come from: the settings file (found upward,
  read and checked with did-you-mean) and gcloud's active configuration;
- :mod:`~govctl.config.resolve`: each key through the layers into a :class:`Config`
  (:func:`load`, :func:`cloud_target`), and a value as the operator writes it (:func:`display`).

Callers import from ``govctl.config``; the parts are for reading and changing.
"""

from govctl.config.keys import (
    DEFAULT_EMULATOR_HOST,
    DEFAULT_EMULATOR_PORT,
    DEFAULT_FEED,
    DEFAULT_REGION,
    DEFAULT_STORAGE_PORT,
    INDEX_LOCATIONS,
    KEYS,
    SECTIONS,
    Key,
    default_state_dir,
)
from govctl.config.resolve import cloud_target, display, load
from govctl.config.settings import (
    NEEDS_PROJECT_FIX,
    AlertSettings,
    BuildSettings,
    CloudTarget,
    Config,
    EmulatorSettings,
    IndexSettings,
    JobSettings,
    ScheduleSettings,
    Setting,
)
from govctl.config.sources import CEILING_ENV, CONFIG_ENV, CONFIG_FILE, find_file, shown

__all__ = [
    "CEILING_ENV",
    "CONFIG_ENV",
    "CONFIG_FILE",
    "DEFAULT_EMULATOR_HOST",
    "DEFAULT_EMULATOR_PORT",
    "DEFAULT_FEED",
    "DEFAULT_REGION",
    "DEFAULT_STORAGE_PORT",
    "INDEX_LOCATIONS",
    "KEYS",
    "NEEDS_PROJECT_FIX",
    "SECTIONS",
    "AlertSettings",
    "BuildSettings",
    "CloudTarget",
    "Config",
    "EmulatorSettings",
    "IndexSettings",
    "JobSettings",
    "Key",
    "ScheduleSettings",
    "Setting",
    "cloud_target",
    "default_state_dir",
    "display",
    "find_file",
    "load",
    "shown",
]
