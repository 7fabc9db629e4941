/**
 * The PITR marker (lib/pitr/marker.ts): the `<app>-pitr-marker` SSM document, and per source
 * with `pitr.marker` an EventBridge Scheduler schedule every MARKER_INTERVAL_SECONDS whose
 * universal target is SSM SendCommand of that document to the source's host (by instance id or
 * tag). The schedule's role may send that document to those hosts only.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { Source } from '../config/types';
import { MARKER_INTERVAL_SECONDS, MARKER_SCRIPT } from '../pitr/marker';
import { hostTargets, sendCommandStatements } from './pitr-workflow';

export function pitrMarkerDocumentName(appName: string): string {
  return `${appName}-pitr-marker`;
}

export interface PitrMarkerProps {
  readonly appName: string;
  /** The PITR sources; those with `pitr.marker` get a schedule. */
  readonly sources: readonly Source[];
  readonly group: scheduler.IScheduleGroup;
  readonly deadLetterQueue: sqs.IQueue;
}

export class PitrMarker extends Construct {
  public readonly document: ssm.CfnDocument;
  public readonly schedules: Readonly<Record<string, scheduler.Schedule>>;

  constructor(scope: Construct, id: string, props: PitrMarkerProps) {
    super(scope, id);
    const documentName = pitrMarkerDocumentName(props.appName);
    this.document = new ssm.CfnDocument(this, 'Document', {
      name: documentName,
      documentType: 'Command',
      documentFormat: 'JSON',
      updateMethod: 'NewVersion',
      content: {
        schemaVersion: '2.2',
        description: 'Lifeboat: writes the time into lifeboat.pitr_marker (the exact check of PITR drills; keeps an idle server archiving)',
        parameters: {
          database: { type: 'String', allowedPattern: '^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$', description: 'The database the marker table lives in' },
          osUser: { type: 'String', default: 'postgres', allowedPattern: '^[a-z_][a-z0-9_-]*$', description: 'The PostgreSQL server\'s OS user' },
          port: { type: 'String', default: '5432', allowedPattern: '^[0-9]{1,5}$', description: 'The server\'s port' },
          socketDir: { type: 'String', default: '/var/run/postgresql', allowedPattern: '^/[A-Za-z0-9._/-]+$', description: 'The server\'s Unix socket directory' },
        },
        mainSteps: [{ action: 'aws:runShellScript', name: 'pitrMarker', inputs: { timeoutSeconds: '120', runCommand: MARKER_SCRIPT } }],
      },
    });

    const schedules: Record<string, scheduler.Schedule> = {};
    const stack = Stack.of(this);
    for (const source of props.sources.filter((candidate) => candidate.pitr?.marker)) {
      const pitr = source.pitr as NonNullable<Source['pitr']>;
      schedules[source.name] = new scheduler.Schedule(this, `Schedule-${source.name}`, {
        description: `Lifeboat: PITR marker of ${source.name} every ${MARKER_INTERVAL_SECONDS / 60} minutes`,
        scheduleGroup: props.group,
        schedule: scheduler.ScheduleExpression.rate(Duration.seconds(MARKER_INTERVAL_SECONDS)),
        timeWindow: scheduler.TimeWindow.off(),
        target: new targets.Universal({
          service: 'ssm',
          action: 'sendCommand',
          input: scheduler.ScheduleTargetInput.fromObject({
            DocumentName: documentName,
            Targets: hostTargets(pitr),
            Parameters: { database: [source.connection.databases[0]], osUser: [pitr.osUser] },
            TimeoutSeconds: 60,
          }),
          policyStatements: [
            new iam.PolicyStatement({ actions: ['ssm:SendCommand'], resources: [stack.formatArn({ service: 'ssm', resource: 'document', resourceName: documentName })] }),
            ...sendCommandStatements(stack, [source]),
          ],
          deadLetterQueue: props.deadLetterQueue,
          retryAttempts: 0,
          maxEventAge: Duration.seconds(MARKER_INTERVAL_SECONDS),
        }),
      });
    }
    this.schedules = schedules;
  }
}
