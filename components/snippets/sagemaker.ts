/**
 * Commands that score a SageMaker endpoint, ready to paste: AWS CLI, curl with SigV4, Python with
 * boto3. Pure and tested on exact strings. AWS credentials always come from the user's environment
 * (or boto3's credential chain), never inlined.
 */
import { pythonString, shellQuote } from "./shell";

/** One iris row in MLflow's dataframe_split format: the default body every cloud snippet sends. */
export const SAMPLE_REQUEST = {
  dataframe_split: {
    columns: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    data: [[5.1, 3.5, 1.4, 0.2]],
  },
};

export interface SageMakerSnippetArgs {
  /** AWS region of the endpoint, e.g. us-east-1. */
  region: string;
  /** SageMaker endpoint name. */
  endpointName: string;
  /** Request body; default SAMPLE_REQUEST. */
  body?: unknown;
}

export function sageMakerInvocationUrl(region: string, endpointName: string): string {
  return `https://runtime.sagemaker.${region}.amazonaws.com/endpoints/${endpointName}/invocations`;
}

export function sageMakerSnippets(args: SageMakerSnippetArgs): {
  awsCli: string;
  curl: string;
  python: string;
} {
  const body = JSON.stringify(args.body ?? SAMPLE_REQUEST);
  const awsCli = [
    "aws sagemaker-runtime invoke-endpoint",
    `--region ${shellQuote(args.region)}`,
    `--endpoint-name ${shellQuote(args.endpointName)}`,
    "--content-type application/json",
    "--cli-binary-format raw-in-base64-out",
    `--body ${shellQuote(body)}`,
    "/dev/stdout",
  ].join(" ");
  const curl = [
    "curl -sS -X POST",
    shellQuote(sageMakerInvocationUrl(args.region, args.endpointName)),
    `--aws-sigv4 ${shellQuote(`aws:amz:${args.region}:sagemaker`)}`,
    '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"',
    '-H "x-amz-security-token: $AWS_SESSION_TOKEN"',
    "-H 'Content-Type: application/json'",
    `-d ${shellQuote(body)}`,
  ].join(" ");
  const code = [
    "import boto3",
    `r = boto3.client("sagemaker-runtime", region_name=${pythonString(args.region)}).invoke_endpoint(` +
      `EndpointName=${pythonString(args.endpointName)}, ContentType="application/json", Body=${pythonString(body)})`,
    'print(r["Body"].read().decode())',
  ].join("; ");
  return { awsCli, curl, python: `python3 -c ${shellQuote(code)}` };
}
