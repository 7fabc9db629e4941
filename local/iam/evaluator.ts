/**
 * Evaluates AWS requests against the synthesized policies, the way AWS would: the caller's
 * identity policies, the resource's policy (bucket, key, topic, queue), same-account and
 * cross-account rules, explicit denies first. The evaluation itself is
 * `@cloud-copilot/iam-simulate` (AGPL-3.0: a devDependency of the local runner and the tests
 * only; it is never bundled into a Lambda or an image).
 *
 * A denied request becomes an error shaped like the service's own (name, 403, message
 * "User: … is not authorized to perform: … on resource: … because …"), extended with the
 * statement that denied it or the policies that did not allow it.
 */
import { getDenialReasons, runSimulation, runUnsafeSimulation, type RequestDenial, type Simulation } from '@cloud-copilot/iam-simulate';
import type { IamModel, IamPrincipal, PolicyDocument } from './model';

export interface AwsRequest {
  /** ARN of the role making the request. */
  readonly principal: string;
  /** `s3:GetObject`, `kms:Decrypt`, … */
  readonly action: string;
  readonly resource: string;
  /** Request context keys beyond the ones every request has (aws:PrincipalArn, aws:SecureTransport, …). */
  readonly context?: Readonly<Record<string, string | string[]>>;
  /** The API call the request is made for, for messages: `S3 PutObject s3://bucket/key`. */
  readonly call?: string;
}

export interface Decision {
  readonly request: AwsRequest;
  readonly allowed: boolean;
  /** Why, in words: the denying statement, or the policies that do not allow the request. */
  readonly explanation: string;
}

/** A denied request, as the service would answer it. */
export class AccessDeniedError extends Error {
  readonly $fault = 'client';
  readonly $metadata = { httpStatusCode: 403 };
  constructor(
    readonly decision: Decision,
    name: string,
  ) {
    const { principal, action, resource, call } = decision.request;
    super(`User: ${principal} is not authorized to perform: ${action} on resource: ${resource} because ${decision.explanation}` +
      `${call ? ` (in ${call})` : ''} [IAM-true local run: evaluated against the synthesized policies]`);
    this.name = name;
  }
}

export interface EvaluatorStats {
  /** API calls authorized (each may imply several requests, e.g. S3 + KMS). */
  calls: number;
  /** IAM requests evaluated. */
  requests: number;
  /** Requests denied. */
  denied: number;
  /** Calls per principal ARN. */
  readonly byPrincipal: Map<string, number>;
}

export class IamEvaluator {
  readonly stats: EvaluatorStats = { calls: 0, requests: 0, denied: 0, byPrincipal: new Map() };
  /** Every denial, in order (tests read it). */
  readonly denials: Decision[] = [];
  /** Every decision, in order: what a run asked of IAM, to replay against other policies. */
  readonly decisions: Decision[] = [];
  private readonly now: () => Date;

  constructor(
    readonly model: IamModel,
    opts: { readonly now?: () => Date } = {},
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Authorizes one API call: every request it implies must be allowed; the first denied one
   * throws `AccessDeniedError` with `errorName` (the service's name for it).
   */
  async authorize(requests: readonly AwsRequest[], errorName = 'AccessDenied'): Promise<void> {
    this.stats.calls += 1;
    const principal = requests[0]?.principal;
    if (principal) this.stats.byPrincipal.set(principal, (this.stats.byPrincipal.get(principal) ?? 0) + 1);
    for (const request of requests) {
      const decision = await this.evaluate(request);
      if (!decision.allowed) throw new AccessDeniedError(decision, request.action.startsWith('kms:') && errorName === 'AccessDenied' ? 'AccessDenied' : errorName);
    }
  }

  async evaluate(request: AwsRequest): Promise<Decision> {
    this.stats.requests += 1;
    const principal = this.model.principal(request.principal);
    const target = this.model.resourceOf(request.resource);
    const identity = principal.policies.map((policy, index) => ({ name: policyId(index), policy: policy.document }));
    const simulation: Simulation = {
      request: {
        principal: sessionArn(principal),
        action: request.action,
        // A resource without an account ("*", a global service) is the caller's own account's.
        resource: { resource: request.resource, accountId: target.account || principal.account },
        contextVariables: { ...this.baseContext(principal, request), ...request.context },
      },
      identityPolicies: identity,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: target.policy as PolicyDocument | undefined,
    };
    const result = await runSimulation(simulation, {});
    if (result.resultType === 'error' && result.errors.message === 'must.use.wildcard' && RESOURCE_CHECKED_ANYWAY.has(request.action)) {
      return this.decided(request, runUnsafeSimulation(simulation, {}) === 'Allowed',
        `no policy of ${principal.name} allows ${request.action} on ${request.resource}`);
    }
    if (result.resultType === 'error') {
      throw new Error(`IAM evaluation of ${request.action} on ${request.resource} by ${request.principal} could not run: ${result.errors.message} ${JSON.stringify(result.errors)}`);
    }
    const analysis = result.resultType === 'single' ? result.result.analysis : result.results[0]?.analysis;
    const allowed = result.overallResult === 'Allowed';
    return this.decided(request, allowed, allowed ? 'allowed' : this.explain(principal, request, target, analysis ? getDenialReasons(analysis) : []));
  }

  private decided(request: AwsRequest, allowed: boolean, explanation: string): Decision {
    const decision: Decision = { request, allowed, explanation: allowed ? 'allowed' : explanation };
    this.decisions.push(decision);
    if (!allowed) {
      this.stats.denied += 1;
      this.denials.push(decision);
    }
    return decision;
  }

  private baseContext(principal: IamPrincipal, request: AwsRequest): Record<string, string> {
    const now = this.now();
    const context: Record<string, string> = {
      'aws:PrincipalArn': principal.arn,
      'aws:PrincipalAccount': principal.account,
      'aws:PrincipalType': 'AssumedRole',
      'aws:SecureTransport': 'true',
      'aws:CurrentTime': now.toISOString(),
      'aws:EpochTime': String(Math.floor(now.getTime() / 1000)),
    };
    const service = request.action.split(':')[0];
    if (service === 's3') Object.assign(context, { 's3:TlsVersion': '1.3', 's3:authType': 'REST-HEADER', 's3:signatureversion': 'AWS4-HMAC-SHA256' });
    if (service === 'kms') context['kms:CallerAccount'] = principal.account;
    return context;
  }

  private explain(
    principal: IamPrincipal,
    request: AwsRequest,
    target: { account: string; origin?: string },
    denials: RequestDenial[],
  ): string {
    const explicit = denials.find((denial) => denial.denialType === 'Explicit');
    if (explicit && explicit.denialType === 'Explicit') {
      const statement = explicit.statementId ? `statement "${explicit.statementId}"` : `statement #${explicit.statementIndex}`;
      const where = explicit.policyType === 'resource'
        ? `the ${target.origin ?? 'resource policy'}`
        : explicit.policyType === 'identity' ? `identity policy ${principal.policies[policyIndex(explicit.policyIdentifier)]?.name ?? explicit.policyIdentifier}` : explicit.policyType;
      return `of an explicit deny in ${statement} of ${where}`;
    }
    const parts: string[] = [];
    const sameAccount = principal.account === target.account;
    for (const denial of denials) {
      if (denial.policyType === 'identity') {
        parts.push(`no identity-based policy allows the ${request.action} action (policies of ${principal.name}: ${principal.policies.map((policy) => policy.name).join(', ') || 'none'})`);
      } else if (denial.policyType === 'resource') {
        const why = sameAccount ? 'allows it' : `allows it for a principal of account ${principal.account} (cross-account: both sides must allow)`;
        parts.push(target.origin ? `no statement of the ${target.origin} ${why}` : `no resource-based policy ${why}`);
      } else {
        parts.push(`${denial.policyType} does not allow it`);
      }
    }
    return parts.join(', and ') || 'no policy allows it';
  }
}

/** The session a role's credentials belong to, as AWS names the caller. */
function sessionArn(principal: IamPrincipal): string {
  const [prefix] = principal.arn.split(':role/');
  return `${prefix.replace(':iam:', ':sts:')}:assumed-role/${principal.name}/lifeboat-local`;
}

/**
 * Actions the Service Authorization Reference lists without resource types (so the evaluator
 * wants "*"), which AWS nevertheless authorizes against a resource: the task-token calls are
 * checked against the state machine that issued the token (AWS's AccessDenied names it, and
 * grants on the state machine ARN work). They are evaluated without the evaluator's input
 * validation, against that ARN.
 */
const RESOURCE_CHECKED_ANYWAY = new Set(['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat']);

const policyId = (index: number) => `policy-${index}`;
const policyIndex = (id: string | undefined) => Number(id?.replace('policy-', '') ?? -1);
