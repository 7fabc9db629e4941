/**
 * IAM-true local runs: the synthesized policies of both stacks, evaluated for every AWS call a
 * local run makes, attributed to the role that makes it in AWS. See docs/permissions.md.
 */
export { asAwsService, asPrincipal, currentPrincipal, interceptAwsCalls, type LocalResponder } from './attribution';
export { requestsForCall, UnmappedCallError } from './calls';
export { AccessDeniedError, IamEvaluator, type AwsRequest, type Decision } from './evaluator';
export { IamModel, statements, type IamPrincipal, type PolicyDocument } from './model';
