"""What the agent serves, persisted as one JSON file replaced atomically (write a temp file in the
same directory, fsync, rename), so a crash leaves either the old or the new state, never half."""

import json
import os
import tempfile
from typing import Any, Dict, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from .config import describe_validation_error

STATE_VERSION = 1


class StateError(Exception):
    pass


class BackendRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    port: int
    pid: int
    log_path: str
    models: Optional[Dict[str, str]] = None
    """The shared multi-model worker: every model it holds (name -> URI)."""


class ChallengerRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model_uri: str
    weight: float
    sample_input: Optional[Dict[str, Any]] = None
    backend: Optional[BackendRecord] = None


class ModelRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model_uri: str
    front_port: int
    sample_input: Optional[Dict[str, Any]] = None
    backend: Optional[BackendRecord] = None
    challenger: Optional[ChallengerRecord] = None


class AgentState(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    version: int = STATE_VERSION
    models: Dict[str, ModelRecord] = {}


def load_state(path: str) -> AgentState:
    if not os.path.exists(path):
        return AgentState()
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        state = AgentState.model_validate(raw)
    except (OSError, json.JSONDecodeError) as err:
        raise StateError(f"state file {path} cannot be read: {err}") from None
    except ValidationError as err:
        raise StateError(describe_validation_error(err, f"state file {path}")) from None
    if state.version != STATE_VERSION:
        raise StateError(f"state file {path} has version {state.version}, this agent reads {STATE_VERSION}")
    return state


def save_state(path: str, state: AgentState) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(state.model_dump_json(indent=2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
