/**
 * Commands that score a SageMaker endpoint, ready to paste: AWS CLI, curl with SigV4, Python with
 * boto3. Pure and tested on exact strings. AWS credentials are never inlined: the AWS CLI and boto3
 * use their own credential chain, and curl gets the chain's resolved credentials from
 * `aws configure export-credentials` (profiles, SSO, instance and container roles alike).
 */
import { awsCredentialsFromChain, pythonString, shellQuote } from "./shell";

export interface SageMakerSnippetArgs {
  /** AWS region of the endpoint, e.g. us-east-1. */
  region: string;
  /** SageMaker endpoint name. */
  endpointName: string;
  /** Request body: the model's own sample input (components/sampleInput.ts). */
  body: unknown;
}

export function sageMakerInvocationUrl(region: string, endpointName: string): string {
  return `https://runtime.sagemaker.${region}.amazonaws.com/endpoints/${endpointName}/invocations`;
}

export function sageMakerSnippets(args: SageMakerSnippetArgs): {
  awsCli: string;
  curl: string;
  python: string;
} {
  const body = JSON.stringify(args.body);
  const awsCli = [
    "aws sagemaker-runtime invoke-endpoint",
    `--region ${shellQuote(args.region)}`,
    `--endpoint-name ${shellQuote(args.endpointName)}`,
    "--content-type application/json",
    "--cli-binary-format raw-in-base64-out",
    `--body ${shellQuote(body)}`,
    "/dev/stdout",
  ].join(" ");
  const curl = awsCredentialsFromChain(
    [
      "curl -sS -X POST",
      shellQuote(sageMakerInvocationUrl(args.region, args.endpointName)),
      `--aws-sigv4 ${shellQuote(`aws:amz:${args.region}:sagemaker`)}`,
      '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"',
      // Only temporary credentials carry a session token; an empty header would break the signature.
      '${AWS_SESSION_TOKEN:+-H "x-amz-security-token: $AWS_SESSION_TOKEN"}',
      "-H 'Content-Type: application/json'",
      `-d ${shellQuote(body)}`,
    ].join(" "),
  );
  const code = [
    "import boto3",
    `r = boto3.client("sagemaker-runtime", region_name=${pythonString(args.region)}).invoke_endpoint(` +
      `EndpointName=${pythonString(args.endpointName)}, ContentType="application/json", Body=${pythonString(body)})`,
    'print(r["Body"].read().decode())',
  ].join("; ");
  return { awsCli, curl, python: `python3 -c ${shellQuote(code)}` };
}
