"""Champion/challenger: which backend of a model serves one request. The challenger gets `weight` of
the requests at random; the X-Model-Variant header pins a request to `champion` or `challenger`."""

import random
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple, Union

from pydantic import BaseModel, ConfigDict, Field

from .backends import Backend

if TYPE_CHECKING:
    from .manager import ServedModel

VARIANT_HEADER = "X-Model-Variant"
VARIANTS = ("champion", "challenger")

# (backend, variant) to forward to, or (HTTP status, message) to answer with.
Choice = Union[Tuple[Backend, str], Tuple[int, str]]
Picker = Callable[[Mapping[str, str]], Choice]


class ChallengerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model_uri: str = Field(min_length=1, max_length=2048)
    weight: float = Field(gt=0, lt=1)
    """Share of the unpinned requests the challenger serves."""
    sample_input: Optional[Dict[str, Any]] = None


def choose_backend(
    model: "Optional[ServedModel]", headers: Mapping[str, str], draw: Callable[[], float] = random.random
) -> Choice:
    if model is None or model.backend is None:
        return (503, "the model has no serving backend right now")
    pinned = headers.get(VARIANT_HEADER)
    if pinned is not None:
        if pinned not in VARIANTS:
            return (400, f"{VARIANT_HEADER} must be one of {', '.join(VARIANTS)}, got {pinned!r}")
        if pinned == "challenger":
            if model.challenger is None:
                return (409, f"model {model.name} has no challenger; {VARIANT_HEADER}: challenger cannot be served")
            return (model.challenger, "challenger")
        return (model.backend, "champion")
    if model.challenger is not None and draw() < model.challenger_weight:
        return (model.challenger, "challenger")
    return (model.backend, "champion")
