/** One entry of the stack output `endpoints`: how to reach and score a served model. */
export interface EndpointEntry {
  /** Serving target: "mlflow" (the MLflow host), "sagemaker", "azureml", ... */
  target: string;
  /** Scoring URL (`.../invocations` for the MLflow target). */
  url: string;
  /** `models:/<name>/<version>` */
  modelUri: string;
  version: string;
  /** A curl command that scores one sample row. */
  curl: string;
  /** A Python command (standard library only) that scores one sample row. */
  python: string;
}

/** One entry of the stack output endpoints["<model>/<target>"]: the MLflow target's keys, plus awsCli. */
export interface CloudEndpointEntry extends EndpointEntry {
  target: "sagemaker" | "azureml";
  /** SageMaker only: `aws sagemaker-runtime invoke-endpoint ...`. */
  awsCli?: string;
}
