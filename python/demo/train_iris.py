"""Train the demo `iris` model deterministically and save it as an MLflow model directory.

Usage: python train_iris.py OUTPUT_DIR [--regularization C]

The model is a scikit-learn logistic regression on the iris data set that scikit-learn ships (no download).
Input columns: sepal_length, sepal_width, petal_length, petal_width; it predicts class 0, 1 or 2.
A different --regularization gives a different model (used to exercise "new source -> new version").
"""

import argparse
import os
import shutil
import sys

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--regularization", type=float, default=1.0)
    args = parser.parse_args()

    iris = load_iris()
    features = pd.DataFrame(iris.data, columns=COLUMNS)
    model = LogisticRegression(C=args.regularization, max_iter=500, random_state=0)
    model.fit(features, iris.target)

    if os.path.exists(args.output_dir):
        shutil.rmtree(args.output_dir)
    example = features.head(2)
    mlflow.sklearn.save_model(
        model,
        args.output_dir,
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
    )
    print(f"saved iris model (C={args.regularization}) to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
