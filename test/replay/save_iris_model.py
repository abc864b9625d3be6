"""Saves an iris LogisticRegression with whatever MLflow runs this script (the replay suite runs it in a
throwaway venv with an older MLflow): `python save_iris_model.py OUT_DIR`."""

import sys

import mlflow
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
model = LogisticRegression(max_iter=500).fit(X, y)
mlflow.sklearn.save_model(model, sys.argv[1], input_example=X.head(2))
print(mlflow.__version__)
