"""What a workflow is (model, input, output, batch size), the guide's execute body, and the
per-run overrides carried in `programParameters` ("--input /data/in.csv --output /data/out.csv").

Locations are absolute paths on the agent's host, or object-store URIs (s3://, abfss://, abfs://, az://)
read and written through pyarrow.fs with the host's own credentials (stores.py); a scheme this
python's pyarrow cannot reach is refused here, naming the field."""

import argparse
import os
import re
import shlex
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import describe_validation_error
from .mail import recipients
from .stores import SCHEMES, check_remote, scheme_of

WORKFLOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_REF = re.compile(r"^models:/[A-Za-z0-9][A-Za-z0-9_.\- ]*(@[A-Za-z0-9_-]+|/[0-9]+)$")
Format = Literal["csv", "parquet", "jsonl"]
EXTENSIONS = {"csv": (".csv",), "parquet": (".parquet", ".pq"), "jsonl": (".jsonl", ".json")}


class SpecError(Exception):
    """A 400: the message names the field and the value."""


def check_location(value: str) -> str:
    scheme = scheme_of(value)
    if scheme in SCHEMES:
        return check_remote(value)
    if scheme:
        supported = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"scheme {scheme}:// is not supported; use an absolute path on the agent's host or {supported}")
    if not os.path.isabs(value):
        raise ValueError("must be an absolute path on the agent's host")
    return os.path.normpath(value)


class WorkflowSpec(BaseModel):
    """PUT /api/v1/workflows/<id> body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model_uri: str = Field(max_length=2048)
    """models:/name@alias or models:/name/<version>."""
    input: str = Field(min_length=1, max_length=4096)
    """A file, or a folder whose files with the input format's extension are read in name order."""
    input_format: Format = "csv"
    output: str = Field(min_length=1, max_length=4096)
    """One file: the input rows plus a `prediction` column (written beside it as a .partial file, renamed at the end)."""
    output_format: Format = "csv"
    batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    max_concurrent_runs: int = Field(default=1, ge=1, le=16)
    """Runs of this workflow at the same time; more wait as queued."""
    timeout_seconds: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    """A run still scoring after this is stopped and reported failed."""

    @field_validator("model_uri")
    @classmethod
    def _model_ref(cls, value: str) -> str:
        if not MODEL_REF.match(value):
            raise ValueError("must be models:/<name>@<alias> or models:/<name>/<version>")
        return value

    @field_validator("input", "output")
    @classmethod
    def _location(cls, value: str) -> str:
        return check_location(value)


class ExecuteRequest(BaseModel):
    """The user guide's body for POST /api/v1/workflow/execute; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)
    workflowId: str = Field(min_length=1, max_length=64)
    programParameters: str = Field(default="", max_length=16384)
    sparkConfig: Optional[Dict[str, Union[str, int, float, bool]]] = None
    """Accepted and recorded; ignored (no Spark runtime: pandas batches in one process), and the run says so."""
    libJars: Optional[Union[str, List[str]]] = None
    """Accepted and recorded; ignored (no JVM runs here), and the run says so."""
    emailOnSuccess: Optional[Union[str, List[str]]] = None
    """Addresses (a comma-separated string or a list) mailed when the run succeeds, through config smtp."""
    emailOnFailure: Optional[Union[str, List[str]]] = None
    """Addresses mailed when the run fails (or is interrupted)."""

    @field_validator("emailOnSuccess", "emailOnFailure")
    @classmethod
    def _addresses(cls, value: Union[None, str, List[str]]) -> Union[None, str, List[str]]:
        recipients(value)  # raises naming the bad address
        return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit
        raise SpecError(f"programParameters: {message}")


def _parser() -> _Parser:
    parser = _Parser(prog="programParameters", add_help=False, allow_abbrev=False)
    parser.add_argument("--model", dest="model_uri")
    parser.add_argument("--input", dest="input")
    parser.add_argument("--input-format", dest="input_format")
    parser.add_argument("--output", dest="output")
    parser.add_argument("--output-format", dest="output_format")
    parser.add_argument("--batch-size", dest="batch_size")
    return parser


def run_spec(spec: WorkflowSpec, program_parameters: str) -> WorkflowSpec:
    """The workflow's settings with this run's overrides, validated as a whole (errors name the flag)."""
    try:
        words = shlex.split(program_parameters)
    except ValueError as err:
        raise SpecError(f"programParameters: {err} (got {program_parameters!r})") from None
    args = vars(_parser().parse_args(words))
    overrides: Dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    if "batch_size" in overrides:
        try:
            overrides["batch_size"] = int(overrides["batch_size"])
        except ValueError:
            raise SpecError(f"programParameters --batch-size: not an integer (got {args['batch_size']!r})") from None
    try:
        return WorkflowSpec.model_validate({**spec.model_dump(), **overrides})
    except ValidationError as err:
        flags = {k: "--" + k.replace("_uri", "").replace("_", "-") for k in overrides}
        problems = []
        for problem in err.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            where = f"programParameters {flags[field]}" if field in flags else f"workflow {field}"
            problems.append(f"{where}: {problem['msg']} (got {problem.get('input')!r})")
        raise SpecError("; ".join(problems)) from None


def parse_body(model: Any, raw: object, what: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise SpecError(describe_validation_error(err, what)) from None
