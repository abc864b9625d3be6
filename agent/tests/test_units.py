"""Fast checks without model servers: config and request validation, token handling, the state file,
and the published OpenAPI document."""

import json
import os

import pytest

from model_serving_agent import state as state_module
from model_serving_agent.api import create_app
from model_serving_agent.auth import TokenError, bearer_matches, read_token_file, read_token_stdin
from model_serving_agent.config import ConfigError, parse_config
from model_serving_agent.manager import Manager
from model_serving_agent.openapi import openapi_schema
from model_serving_agent.state import AgentState, ModelRecord, StateError, load_state, save_state

BASE = {"port": 16000, "state_file": "/tmp/s.json", "log_dir": "/tmp/logs"}


def test_config_defaults_keep_fronts_in_the_admin_range():
    config = parse_config(BASE)
    assert (config.front_ports.first, config.front_ports.last) == (5001, 5099)
    assert config.workers() == os.cpu_count()


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"port": "16000"}, 'config port: Input should be a valid integer (got "16000")'),
        ({"colour": "blue"}, 'config colour: Extra inputs are not permitted (got "blue")'),
        ({"backend_workers": 0}, "config backend_workers: Input should be greater than or equal to 1 (got 0)"),
        ({"front_ports": {"first": 36010, "last": 36000}}, "first (36010) is greater than last (36000)"),
        (
            {"front_ports": {"first": 16010, "last": 16050}, "backend_ports": {"first": 16050, "last": 16060}},
            "front_ports 16010-16050 overlap backend_ports 16050-16060",
        ),
        ({"port": 5001}, "port 5001 lies inside front_ports 5001-5099"),
    ],
)
def test_config_errors_name_the_field_and_value(override, expected):
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, **override})
    assert expected in str(err.value)


def test_config_requires_port_and_state_file():
    with pytest.raises(ConfigError) as err:
        parse_config({"log_dir": "/tmp/l"})
    assert "config port: Field required" in str(err.value)
    assert "config state_file: Field required" in str(err.value)


def test_token_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "token"
    path.write_text("0123456789abcdef0123\n")
    path.chmod(0o644)
    with pytest.raises(TokenError, match="mode 0644"):
        read_token_file(str(path))
    path.chmod(0o600)
    assert read_token_file(str(path)) == "0123456789abcdef0123"


def test_short_token_is_refused(tmp_path):
    import io

    with pytest.raises(TokenError, match="shorter than 16"):
        read_token_stdin(io.StringIO("short\n"))


def test_bearer_compare():
    token = "0123456789abcdef0123"
    assert bearer_matches(token, f"Bearer {token}")
    assert not bearer_matches(token, None)
    assert not bearer_matches(token, token)  # no scheme
    assert not bearer_matches(token, f"Bearer {token}x")
    assert not bearer_matches(token, "Bearer ")


def test_state_roundtrip_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "state.json")
    first = AgentState(models={"iris": ModelRecord(model_uri="models:/iris/1", front_port=5001)})
    save_state(path, first)
    assert load_state(path) == first

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(state_module.os, "replace", crash)
    second = AgentState(models={"iris": ModelRecord(model_uri="models:/iris/2", front_port=5001)})
    with pytest.raises(OSError):
        save_state(path, second)
    monkeypatch.undo()
    assert load_state(path) == first
    assert os.listdir(tmp_path) == ["state.json"]  # no temp file left behind


def test_state_file_with_a_bad_field_names_it(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "models": {"iris": {"model_uri": "m", "front_port": "5001"}}}))
    with pytest.raises(StateError, match="models.iris.front_port"):
        load_state(str(path))


def test_openapi_documents_every_route():
    app = create_app(Manager(config=parse_config(BASE), session=None), "0123456789abcdef0123")  # type: ignore[arg-type]
    paths = openapi_schema()["paths"]
    for route in app.router.routes():
        path = route.resource.canonical  # type: ignore[union-attr]
        method = route.method.lower()
        assert path in paths, f"{path} missing from the OpenAPI document"
        if method not in ("*", "head"):
            assert method in paths[path], f"{method.upper()} {path} missing from the OpenAPI document"


def test_log_tail_keeps_the_cause_that_scrolled_out_and_skips_mlflows_wrapper(tmp_path):
    from model_serving_agent.backends import failure_cause, log_tail

    path = tmp_path / "backend.log"
    cause = "ModuleNotFoundError: No module named 'model_serving_no_such_module'"
    wrapper = "Exception: Command '['bash', '-c', 'exec uvicorn']' returned non zero return code. Return code = 1"
    path.write_text("\n".join(["Traceback (most recent call last):", cause] + [f"  frame {i}" for i in range(30)] + [wrapper]))
    tail = log_tail(str(path), lines=10)
    assert tail[0] == cause and tail[-1] == wrapper and len(tail) == 12
    assert failure_cause(tail) == cause


def test_challenger_split_and_pin_header():
    from model_serving_agent.backends import Backend
    from model_serving_agent.manager import ServedModel
    from model_serving_agent.routing import choose_backend

    champion = Backend(model_uri="models:/m/2", port=1, pid=1, log_path="")
    challenger = Backend(model_uri="models:/m/3", port=2, pid=2, log_path="")
    model = ServedModel(name="m", front_port=0, model_uri="models:/m/2", sample_input=None, backend=champion)
    assert choose_backend(model, {}, draw=lambda: 0.0) == (champion, "champion")  # no challenger
    assert choose_backend(model, {"X-Model-Variant": "challenger"})[0] == 409
    model.challenger, model.challenger_weight = challenger, 0.25
    assert choose_backend(model, {}, draw=lambda: 0.249) == (challenger, "challenger")
    assert choose_backend(model, {}, draw=lambda: 0.25) == (champion, "champion")
    assert choose_backend(model, {"X-Model-Variant": "challenger"}, draw=lambda: 0.9) == (challenger, "challenger")
    assert choose_backend(model, {"X-Model-Variant": "champion"}, draw=lambda: 0.0) == (champion, "champion")
    status, message = choose_backend(model, {"X-Model-Variant": "blue"})
    assert status == 400 and "'blue'" in message
    assert choose_backend(None, {})[0] == 503


@pytest.mark.parametrize(
    "challenger, message",
    [
        ({"model_uri": "models:/m/3", "weight": 1.0}, "challenger.weight: Input should be less than 1"),
        ({"model_uri": "models:/m/3", "weight": 0}, "challenger.weight: Input should be greater than 0"),
        ({"model_uri": "models:/m/3"}, "challenger.weight: Field required"),
        ({"model_uri": "models:/m/3", "weight": 0.5, "pin": "x"}, "challenger.pin: Extra inputs"),
    ],
)
def test_challenger_request_errors_name_the_field(challenger, message):
    from pydantic import ValidationError

    from model_serving_agent.api import DeployRequest
    from model_serving_agent.config import describe_validation_error

    with pytest.raises(ValidationError) as err:
        DeployRequest.model_validate({"model_uri": "models:/m/2", "challenger": challenger})
    assert message in describe_validation_error(err.value, "request body")
