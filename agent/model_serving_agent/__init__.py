"""The model-serving MLOps agent: a REST API on the MLflow host that serves registered models behind
stable front URLs and switches versions without downtime."""

__version__ = "0.1.0"
