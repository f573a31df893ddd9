"""Where nfvctl finds the service and its credentials.

Precedence: environment (NFVCTL_URL, NFVCTL_CLIENT_ID, NFVCTL_CLIENT_SECRET),
then the config file (NFVCTL_CONFIG or ~/.config/nfvctl/config.json), which
`make demo` and `nfvctl login` write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

DEFAULT_URL = "http://127.0.0.1:8080"


class CliConfig(BaseModel):
    """Connection settings of the CLI."""

    url: str = DEFAULT_URL
    client_id: str | None = None
    client_secret: str | None = None


def config_path() -> Path:
    given = os.environ.get("NFVCTL_CONFIG")
    if given:
        return Path(given)
    return Path.home() / ".config" / "nfvctl" / "config.json"


def load_config() -> CliConfig:
    path = config_path()
    config = CliConfig()
    if path.is_file():
        try:
            config = CliConfig.model_validate_json(path.read_text())
        except ValidationError as exc:
            raise ValueError(
                f"{path} is not a valid nfvctl config: {exc.errors()[0]['msg']}"
            ) from exc
    overrides = {
        "url": os.environ.get("NFVCTL_URL"),
        "client_id": os.environ.get("NFVCTL_CLIENT_ID"),
        "client_secret": os.environ.get("NFVCTL_CLIENT_SECRET"),
    }
    return config.model_copy(update={k: v for k, v in overrides.items() if v})


def save_config(config: CliConfig, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(config.model_dump(), out, indent=2)
    os.replace(tmp, path)
    return path
