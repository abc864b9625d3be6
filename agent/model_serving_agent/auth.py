"""The API token: read from a file only its owner can read, or from stdin (never argv or the
environment, where other users and child processes can see it); compared in constant time."""

import hmac
import os
import stat
from typing import Optional, TextIO

MIN_TOKEN_LENGTH = 16


class TokenError(Exception):
    pass


def _checked(token: str, source: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenError(f"token from {source} is shorter than {MIN_TOKEN_LENGTH} characters")
    return token


def read_token_file(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TokenError(
                f"token file {path} has mode {stat.S_IMODE(mode):04o}: group/others may read it; chmod 600 it"
            )
        with open(path, encoding="utf-8") as f:
            return _checked(f.read(), f"file {path}")
    except OSError as err:
        raise TokenError(f"token file {path}: {err.strerror}") from None


def read_token_stdin(stream: TextIO) -> str:
    return _checked(stream.readline(), "stdin")


def bearer_matches(expected: str, authorization: Optional[str]) -> bool:
    """True when the Authorization header is `Bearer <expected>`; constant time in the token."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    given = authorization[len("Bearer ") :].strip().encode()
    return hmac.compare_digest(given, expected.encode())
