/**
 * Attributes every AWS SDK call of a local run to the principal that makes it in AWS, and
 * evaluates it before it is sent.
 *
 * The local runner runs each piece of deployed code — a Lambda handler, a Fargate task's entry
 * point, a state's own service call — inside `asPrincipal(roleArn, …)`, the role the synthesized
 * templates give it. `interceptAwsCalls` wraps the `send` of the SDK's one base client class
 * (every service client of @aws-sdk/* inherits it), so any client, however and wherever it was
 * made, is covered: production code carries no hook for this. Within a principal's scope each
 * command is mapped to its IAM requests (calls.ts) and authorized (evaluator.ts); a denial
 * throws the service's AccessDenied error and the request never leaves the process. Calls of
 * services no local server answers (Step Functions task tokens, CloudWatch) go to the
 * responders given, after the same authorization.
 *
 * Calls outside any scope (test set-up and assertions, the local services' own administration)
 * pass through unevaluated: they are not made by deployed code. `asAwsService` marks work that
 * AWS itself does with a role (S3 replication): its SDK calls stand in for AWS's internal ones
 * and the code authorizes the service's own actions explicitly.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { AsyncLocalStorage } from 'node:async_hooks';
import { requestsForCall } from './calls';
import type { IamEvaluator } from './evaluator';

type Scope = { readonly kind: 'principal'; readonly principal: string } | { readonly kind: 'service'; readonly service: string };

const scopes = new AsyncLocalStorage<Scope>();

/** Runs `fn` as `principal` (a role ARN of the synthesized templates): its AWS calls are evaluated as that role's. */
export function asPrincipal<T>(principal: string, fn: () => Promise<T>): Promise<T> {
  return scopes.run({ kind: 'principal', principal }, fn);
}

/** Runs `fn` as an AWS service acting with a role (its own requests are authorized by the caller). */
export function asAwsService<T>(service: string, fn: () => Promise<T>): Promise<T> {
  return scopes.run({ kind: 'service', service }, fn);
}

/** The principal whose scope the caller is in, if any. */
export function currentPrincipal(): string | undefined {
  const scope = scopes.getStore();
  return scope?.kind === 'principal' ? scope.principal : undefined;
}

/** Answers a command of a service that no local server provides, after it was authorized. */
export type LocalResponder = (command: string, input: Record<string, unknown>, principal: string) => Promise<unknown>;

interface SmithyCommand {
  readonly input: Record<string, unknown>;
  readonly constructor: { readonly name: string };
}

type Send = (this: { config: { serviceId?: string } }, command: SmithyCommand, ...rest: unknown[]) => Promise<unknown>;

interface Interception {
  readonly evaluator: IamEvaluator;
  readonly responders: Readonly<Record<string, LocalResponder>>;
}

let active: Interception | undefined;
let original: Send | undefined;

/** The prototype that owns `send` for every SDK client (smithy's `Client`). */
function clientBase(): { send: Send } {
  let proto = S3Client.prototype as unknown as object | null;
  while (proto && !Object.prototype.hasOwnProperty.call(proto, 'send')) proto = Object.getPrototypeOf(proto) as object | null;
  if (!proto) throw new Error('IAM-true local run: cannot find the SDK client base class');
  return proto as { send: Send };
}

/**
 * Evaluates every SDK call made in a principal's scope from now until the returned function is
 * called. One interception at a time per process (module registry).
 */
export function interceptAwsCalls(evaluator: IamEvaluator, responders: Readonly<Record<string, LocalResponder>> = {}): () => void {
  if (active) throw new Error('IAM-true local run: AWS calls are already intercepted in this process (one local run at a time)');
  const base = clientBase();
  if (!original) {
    original = base.send;
    const unpatched = original;
    base.send = function send(this: { config: { serviceId?: string } }, command: SmithyCommand, ...rest: unknown[]) {
      const interception = active;
      const scope = scopes.getStore();
      if (!interception || scope?.kind !== 'principal') return unpatched.call(this, command, ...rest);
      if (typeof rest[rest.length - 1] === 'function') throw new Error('IAM-true local run: callback-style SDK calls are not supported');
      return authorizedSend(interception, scope.principal, { client: this, command, send: (sent) => unpatched.call(this, sent, ...rest) });
    };
  }
  active = { evaluator, responders };
  return () => {
    active = undefined;
  };
}

/** One SDK call on its way: the client, the command, and how to send a command on that client. */
interface Call {
  readonly client: { config: { serviceId?: string } };
  readonly command: SmithyCommand;
  readonly send: (command: SmithyCommand) => Promise<unknown>;
}

async function authorizedSend(interception: Interception, principal: string, call: Call): Promise<unknown> {
  const { client, command } = call;
  const service = client.config.serviceId ?? 'unknown';
  const name = command.constructor.name.replace(/Command$/, '');
  const { evaluator } = interception;
  if (service === 'S3' && name === 'DeleteObjects') return deleteObjects(evaluator, principal, call);
  const { requests, errorName } = requestsForCall(evaluator.model, principal, service, name, command.input ?? {});
  await evaluator.authorize(requests, errorName);
  const responder = interception.responders[service];
  if (responder) return responder(name, command.input ?? {}, principal);
  return call.send(command);
}

/**
 * DeleteObjects is authorized per object, as S3 does: a denied key is reported in the
 * response's Errors (AccessDenied) and the others are deleted.
 */
async function deleteObjects(evaluator: IamEvaluator, principal: string, call: Call): Promise<unknown> {
  const { command } = call;
  const input = command.input as { Bucket: string; Delete?: { Objects?: { Key: string; VersionId?: string }[]; Quiet?: boolean }; BypassGovernanceRetention?: boolean };
  const allowed: { Key: string; VersionId?: string }[] = [];
  const errors: { Key: string; VersionId?: string; Code: string; Message: string }[] = [];
  evaluator.stats.calls += 1;
  for (const entry of input.Delete?.Objects ?? []) {
    const { requests } = requestsForCall(evaluator.model, principal, 'S3', 'DeleteObject', {
      Bucket: input.Bucket, Key: entry.Key, VersionId: entry.VersionId, BypassGovernanceRetention: input.BypassGovernanceRetention,
    });
    let denied: string | undefined;
    for (const request of requests) {
      const decision = await evaluator.evaluate(request);
      if (!decision.allowed) {
        denied = `User: ${principal} is not authorized to perform: ${request.action} on resource: ${request.resource} because ${decision.explanation}`;
        break;
      }
    }
    if (denied) errors.push({ Key: entry.Key, VersionId: entry.VersionId, Code: 'AccessDenied', Message: denied });
    else allowed.push(entry);
  }
  if (allowed.length === 0) return { Deleted: [], Errors: errors, $metadata: { httpStatusCode: 200 } };
  const Command = command.constructor as unknown as new (input: unknown) => SmithyCommand;
  const response = (await call.send(new Command({ ...input, Delete: { ...input.Delete, Objects: allowed } }))) as { Errors?: unknown[] };
  return { ...response, Errors: [...(response.Errors ?? []), ...errors] };
}
