"""Prints a model's `serving_input_example.json` (MLflow saves it with the input example) as one JSON
line, or `null` when the model has none. Run as a subprocess so the agent itself never imports MLflow.

Usage: python -m model_serving_agent.serving_example MODEL_URI   (MLFLOW_TRACKING_URI in the env)
"""

import json
import sys


def main() -> int:
    from mlflow.models.utils import load_serving_example

    try:
        example = load_serving_example(sys.argv[1])
    except Exception as err:  # a model without an example: MLflow raises, the caller falls back to /ping
        print(f"no serving example: {err}", file=sys.stderr)
        print("null")
        return 0
    print(json.dumps(json.loads(example) if isinstance(example, str) else example))
    return 0


if __name__ == "__main__":
    sys.exit(main())
