import * as http from "http";
import type { AddressInfo } from "net";

/** What the fake answers for one endpoint name: its variants, or an AWS error. */
export type FakeEndpoint =
  | {
      variants: {
        VariantName: string;
        DesiredInstanceCount?: number;
        CurrentInstanceCount?: number;
      }[];
    }
  | { error: { type: string; message: string } };

/**
 * SageMaker's DescribeEndpoint (JSON 1.1 protocol) on loopback, answered from `endpoints`; every request
 * is recorded. Point the AWS SDK at it with AWS_ENDPOINT_URL_SAGEMAKER.
 */
export async function fakeSageMaker(endpoints: Record<string, FakeEndpoint>): Promise<{
  url: string;
  requests: { target: string; body: Record<string, unknown> }[];
  close: () => Promise<void>;
}> {
  const requests: { target: string; body: Record<string, unknown> }[] = [];
  const server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      requests.push({ target: String(req.headers["x-amz-target"]), body });
      const known = endpoints[String(body.EndpointName)];
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify(payload));
      };
      if (known === undefined) {
        reply(400, {
          __type: "ValidationException",
          message: `Could not find endpoint "${String(body.EndpointName)}".`,
        });
      } else if ("error" in known) {
        reply(400, { __type: known.error.type, Message: known.error.message });
      } else {
        reply(200, {
          EndpointName: body.EndpointName,
          EndpointArn: `arn:aws:sagemaker:eu-west-1:123456789012:endpoint/${String(body.EndpointName)}`,
          EndpointConfigName: "config",
          EndpointStatus: "InService",
          CreationTime: 1_700_000_000,
          LastModifiedTime: 1_700_000_000,
          ProductionVariants: known.variants,
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
