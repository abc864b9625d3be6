"""The agent's config file (JSON), validated strictly: unknown keys, wrong types and clashing port
ranges are errors that name the field and the value."""

import json
import os
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .workflows.mail import SmtpConfig


class ConfigError(Exception):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PortRange(_Strict):
    first: int = Field(ge=1024, le=65535)
    last: int = Field(ge=1024, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> "PortRange":
        if self.first > self.last:
            raise ValueError(f"first ({self.first}) is greater than last ({self.last})")
        return self

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def ports(self) -> range:
        return range(self.first, self.last + 1)

    def overlaps(self, other: "PortRange") -> bool:
        return self.first <= other.last and other.first <= self.last


class AgentConfig(_Strict):
    host: str = "127.0.0.1"
    """Interface the API and the fronts bind; backends always bind 127.0.0.1."""
    port: int = Field(ge=1024, le=65535)
    """The API's port; it also serves every model at /models/<name>/invocations."""
    front_ports: PortRange = PortRange(first=5001, last=5099)
    """Each model's own front port comes from here and is kept across versions and restarts."""
    backend_ports: PortRange = PortRange(first=15001, last=15999)
    state_file: str = Field(min_length=1)
    log_dir: str = Field(min_length=1)
    token_file: Optional[str] = Field(default=None, min_length=1)
    """0600 file holding the API token; without it the token is read from stdin (--token-stdin)."""
    mlflow_tracking_uri: Optional[str] = Field(default=None, min_length=1)
    backend_workers: Optional[int] = Field(default=None, ge=1, le=64)
    """uvicorn workers per backend; default: the machine's core count."""
    backend_start_timeout_seconds: float = Field(default=180.0, gt=0)
    drain_timeout_seconds: float = Field(default=30.0, gt=0)
    python: Optional[str] = Field(default=None, min_length=1)
    """Interpreter that runs `mlflow models serve`; default: the agent's own."""
    stop_backends_on_exit: bool = False
    """False: backends outlive the agent and are adopted by the next start (no model restart)."""
    workflow_runs: int = Field(default=2, ge=1, le=64)
    """Workflow executions scoring at the same time (the rest wait as queued)."""
    session_ttl_seconds: float = Field(default=3600.0, gt=0, le=30 * 24 * 3600)
    """Lifetime of a POST /api/v1/login session cookie."""
    smtp: Optional[SmtpConfig] = None
    """SMTP server for the workflows' emailOnSuccess / emailOnFailure; without it nothing is sent (and runs say so)."""

    @model_validator(mode="after")
    def _ports_apart(self) -> "AgentConfig":
        if self.front_ports.overlaps(self.backend_ports):
            raise ValueError(
                f"front_ports {self.front_ports.first}-{self.front_ports.last} overlap "
                f"backend_ports {self.backend_ports.first}-{self.backend_ports.last}"
            )
        for name, ports in (("front_ports", self.front_ports), ("backend_ports", self.backend_ports)):
            if self.port in ports:
                raise ValueError(f"port {self.port} lies inside {name} {ports.first}-{ports.last}")
        return self

    def workers(self) -> int:
        return self.backend_workers or os.cpu_count() or 1


def describe_validation_error(err: ValidationError, what: str) -> str:
    """One line per problem: the dotted field, what is wrong, and the value given."""
    lines = []
    for problem in err.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        value: Any = problem.get("input")
        lines.append(f"{what} {field}: {problem['msg']} (got {json.dumps(value, default=str)})")
    return "; ".join(lines)


def parse_config(raw: object) -> AgentConfig:
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, "config")) from None


def load_config(path: str) -> AgentConfig:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as err:
        raise ConfigError(f"config file {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path} is not JSON: {err}") from None
    return parse_config(raw)
