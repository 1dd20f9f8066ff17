/**
 * AWS SDK v3 clients for the collector. One place decides endpoint, region, path style and
 * credentials, so the S3 poller, the SQS consumer and the tests (moto) build clients alike.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';

// The SDK prints a support notice on Node versions it has not qualified yet; it is noise in our logs.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface AwsConnection {
  region: string;
  /** Custom endpoint (S3-compatible store, VPC endpoint, moto in tests). @default the AWS public endpoint */
  endpoint?: string | null;
  /** Static credentials; when absent the SDK's default chain (env, profile, IMDS, IRSA) is used. */
  credentials?: AwsCredentials | null;
  /** Path-style S3 URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. @default true when `endpoint` is set */
  forcePathStyle?: boolean;
  /** Attempts per request, SDK-level retries with backoff included. @default 5 */
  maxAttempts?: number;
}

function common(conn: AwsConnection) {
  return {
    region: conn.region,
    maxAttempts: conn.maxAttempts ?? 5,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
    ...(conn.credentials ? { credentials: conn.credentials } : {}),
  };
}

export function createS3Client(conn: AwsConnection): S3Client {
  return new S3Client({ ...common(conn), forcePathStyle: conn.forcePathStyle ?? Boolean(conn.endpoint) });
}

export function createSqsClient(conn: AwsConnection): SQSClient {
  return new SQSClient(common(conn));
}
