/** The execution role policy the SageMaker component creates: least privilege for one endpoint. */

export interface ExecutionPolicyInput {
  partition: string;
  region: string;
  accountId: string;
  endpointName: string;
  ecrRepositoryArn: string;
  dataCaptureS3Uri?: string;
  /** Names of the auto-rollback alarms SageMaker must read during a blue/green update. */
  rollbackAlarmNames?: string[];
  /** The model runs in a VPC: SageMaker creates network interfaces with this role. */
  vpc?: boolean;
  kmsKeyArn?: string;
}

/**
 * The created role's only policy: pull this image, write this endpoint's logs, and only when used:
 * write captured data, read the rollback alarms, manage the VPC's network interfaces, use the KMS key.
 */
export function sageMakerExecutionPolicy(p: ExecutionPolicyInput): string {
  const logGroup = `arn:${p.partition}:logs:${p.region}:${p.accountId}:log-group:/aws/sagemaker/Endpoints/${p.endpointName}`;
  const statements: object[] = [
    {
      Sid: "PullScorerImage",
      Effect: "Allow",
      Action: [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ],
      Resource: p.ecrRepositoryArn,
    },
    { Sid: "EcrLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    {
      Sid: "EndpointLogs",
      Effect: "Allow",
      Action: [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
      ],
      Resource: [logGroup, `${logGroup}:log-stream:*`],
    },
  ];
  if (p.dataCaptureS3Uri) {
    const bucketAndPrefix = p.dataCaptureS3Uri.replace(/^s3:\/\//, "").replace(/\/+$/, "");
    statements.push({
      Sid: "DataCapture",
      Effect: "Allow",
      Action: "s3:PutObject",
      Resource: `arn:${p.partition}:s3:::${bucketAndPrefix}/*`,
    });
  }
  if (p.rollbackAlarmNames && p.rollbackAlarmNames.length > 0) {
    statements.push({
      Sid: "ReadRollbackAlarms",
      Effect: "Allow",
      Action: "cloudwatch:DescribeAlarms",
      Resource: p.rollbackAlarmNames.map(
        (n) => `arn:${p.partition}:cloudwatch:${p.region}:${p.accountId}:alarm:${n}`,
      ),
    });
  }
  if (p.vpc) {
    // SageMaker's documented set for models in a VPC; these actions take no resource scoping.
    statements.push({
      Sid: "VpcNetworkInterfaces",
      Effect: "Allow",
      Action: [
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
      ],
      Resource: "*",
    });
  }
  if (p.kmsKeyArn) {
    statements.push({
      Sid: "VolumeKey",
      Effect: "Allow",
      Action: ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
      Resource: p.kmsKeyArn,
    });
  }
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}
