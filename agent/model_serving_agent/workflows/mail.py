"""The guide's emailOnSuccess / emailOnFailure: one plain-text notification per finished run, sent
through the SMTP server of the agent's config (`smtp`); the password is read from a file or an
environment variable at each send and is never logged, stored or passed to a scoring process.
Without `smtp` the addresses are kept and the execution record says they were not sent and why."""

import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

# One address: local@domain, no spaces, angle brackets, quotes or line breaks (no header injection).
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
MAX_RECIPIENTS = 50


class SmtpConfig(BaseModel):
    """config smtp: where notifications go out."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    from_address: str = Field(min_length=3, max_length=254)
    """The From: of every notification."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS before logging in (refused if the server does not offer it)."""
    ca_file: Optional[str] = Field(default=None, min_length=1)
    """PEM bundle that signs the server's certificate; default: the system's trust store."""
    user: Optional[str] = Field(default=None, min_length=1)
    password_file: Optional[str] = Field(default=None, min_length=1)
    """0600 file holding the SMTP password (one line)."""
    password_env: Optional[str] = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the agent's environment variable holding the SMTP password (not passed to scoring processes)."""
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _credentials(self) -> "SmtpConfig":
        if not ADDRESS.match(self.from_address):
            raise ValueError(f"from_address {self.from_address!r} is not an email address")
        sources = [k for k in ("password_file", "password_env") if getattr(self, k) is not None]
        if self.user is None and sources:
            raise ValueError(f"{sources[0]} is set without user")
        if self.user is not None and len(sources) != 1:
            raise ValueError("user needs exactly one of password_file or password_env")
        return self

    def password(self) -> Optional[str]:
        if self.password_file is not None:
            try:
                with open(self.password_file, encoding="utf-8") as f:
                    return f.read().strip("\r\n")
            except OSError as err:
                raise RuntimeError(f"smtp password_file {self.password_file}: {err.strerror}") from None
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise RuntimeError(f"smtp password_env {self.password_env} is not set in the agent's environment")
            return value
        return None


def recipients(value: Union[None, str, List[str]]) -> List[str]:
    """The addresses of emailOnSuccess / emailOnFailure: a string (comma or semicolon separated) or a
    list of strings; ValueError naming the bad address (the caller names the field)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    out: List[str] = []
    for item in items:
        for address in re.split(r"[,;]", item):
            address = address.strip()
            if not address:
                continue
            if not ADDRESS.match(address):
                raise ValueError(f"{address!r} is not an email address")
            if address not in out:
                out.append(address)
    if len(out) > MAX_RECIPIENTS:
        raise ValueError(f"{len(out)} addresses, at most {MAX_RECIPIENTS}")
    return out


def compose(smtp: SmtpConfig, to: List[str], execution: Dict[str, Any]) -> EmailMessage:
    status = execution["status"]
    message = EmailMessage()
    message["From"] = smtp.from_address
    message["To"] = ", ".join(to)
    message["Subject"] = f"[model-serving] workflow {execution['workflow_id']} {status} (execution {execution['id']})"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=smtp.from_address.split("@", 1)[1])
    lines = [
        f"Workflow {execution['workflow_id']}, execution {execution['id']}: {status}.",
        "",
        f"model:     {execution['model_uri']}",
        f"input:     {execution['input']} ({execution['input_format']})",
        f"output:    {execution['output']} ({execution['output_format']})",
        f"rows:      {execution['rows_in']} in, {execution['rows_out']} out, {execution['batches']} batches",
        f"submitted: {execution['submitted_at']}",
        f"finished:  {execution['finished_at']}",
        f"duration:  {execution['duration_seconds']} s",
    ]
    if execution.get("error"):
        lines += ["", f"error: {execution['error']}"]
    lines += ["", f"Status: GET /api/v1/workflow/executions/{execution['id']}"]
    message.set_content("\n".join(lines) + "\n")
    return message


def send(smtp: SmtpConfig, message: EmailMessage) -> None:
    """Blocking; run it off the event loop. Errors carry the server's reply, never the password."""
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
        client.ehlo()
        if smtp.starttls:
            if not client.has_extn("starttls"):
                raise RuntimeError(f"smtp server {smtp.host}:{smtp.port} does not offer STARTTLS (config smtp.starttls)")
            client.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
            client.ehlo()
        if smtp.user is not None:
            client.login(smtp.user, smtp.password() or "")
        client.send_message(message)
