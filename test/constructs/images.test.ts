/**
 * The images `cdk deploy` builds: the worker's (dump, verify on Fargate, drills) and the
 * verifier Lambda's, each with the Docker build arg PG_MAJOR = PG_CLIENT_MAJOR. Build args
 * live in the asset manifest (and the asset hash), not in the template: read it from the
 * synthesized cloud assembly.
 */
import { readFileSync } from 'node:fs';
import { AssetManifestArtifact } from 'aws-cdk-lib/cx-api';
import { createStacks } from '../../lib/stacks';
import { PGBACKREST_VERSION, PG_CLIENT_MAJOR } from '../../lib/domain/versions';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

interface DockerImageAsset {
  readonly source: { readonly dockerFile?: string; readonly dockerBuildArgs?: Record<string, string> };
}

const app = testApp();
const { primary } = createStacks(app, testConfig);
const assembly = app.synth();
const images = assembly.artifacts
  .filter((artifact): artifact is AssetManifestArtifact => artifact instanceof AssetManifestArtifact)
  .flatMap((artifact) => Object.values((JSON.parse(readFileSync(artifact.file, 'utf8')) as { dockerImages?: Record<string, DockerImageAsset> }).dockerImages ?? {}));

test('the primary stack builds two images: worker/Dockerfile and lambdas/verify/Dockerfile', () => {
  expect(primary.stackName).toBeTruthy();
  expect(images.map((image) => image.source.dockerFile).sort()).toEqual(['lambdas/verify/Dockerfile', 'worker/Dockerfile']);
});

test.each(['worker/Dockerfile', 'lambdas/verify/Dockerfile'])('%s is built with PG_MAJOR = PG_CLIENT_MAJOR (and the pgBackRest the hosts run)', (dockerFile) => {
  const image = images.find((candidate) => candidate.source.dockerFile === dockerFile);
  expect(image?.source.dockerBuildArgs).toEqual({ PG_MAJOR: String(PG_CLIENT_MAJOR), PGBACKREST_VERSION });
});
