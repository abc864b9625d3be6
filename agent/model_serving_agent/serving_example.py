"""Prints each model's `serving_input_example.json` (MLflow saves it with the input example) as one
JSON line per model, in argument order, or `null` when the model has none. Run as a subprocess so the
agent itself never imports MLflow; several URIs share one MLflow import.

Usage: python -m model_serving_agent.serving_example MODEL_URI...   (MLFLOW_TRACKING_URI in the env)
"""

import json
import sys


def main() -> int:
    from mlflow.models.utils import load_serving_example

    lines = []
    for uri in sys.argv[1:]:
        try:
            example = load_serving_example(uri)
        except Exception as err:  # a model without an example: MLflow raises, the caller falls back to /ping
            print(f"{uri}: no serving example: {err}", file=sys.stderr)
            lines.append("null")
            continue
        lines.append(json.dumps(json.loads(example) if isinstance(example, str) else example))
    print("\n".join(lines), flush=True)  # together at the end: MLflow's own prints come before them
    return 0


if __name__ == "__main__":
    sys.exit(main())
