import os
import shutil
import tempfile
from typing import Dict, Iterator

import pytest

from .support import MlflowServer, trained_model_dir


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, str]]:
    """A real MLflow server with `iris` v1 (C=1), v2 (C=0.01) and v3 (cannot be loaded)."""
    data_dir = tempfile.mkdtemp(prefix="agent-mlflow-")
    server = MlflowServer(data_dir)
    try:
        models = str(tmp_path_factory.mktemp("models"))
        v1 = server.registry("register", "iris", trained_model_dir("iris-C1", "1.0", models))
        v2 = server.registry("register", "iris", trained_model_dir("iris-C0.01", "0.01", models))
        v3 = server.registry("register-broken", "iris")
        assert (v1["version"], v2["version"], v3["version"]) == ("1", "2", "3")
        yield {"tracking_uri": server.uri, "v1": "models:/iris/1", "v2": "models:/iris/2", "broken": "models:/iris/3"}
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def work_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="agent-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
