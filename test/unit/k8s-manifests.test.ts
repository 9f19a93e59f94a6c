import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { QueueKeys } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { JOB_CATALOG } from '../../src/contracts/job-catalog.js';
import { loadConfig } from '../../src/config/config.js';
import { envSchema } from '../../src/config/env-schema.js';
import { BULL_PREFIX, CLUSTER_BULL_PREFIX, bullKey } from '../../src/redis/redis-keys.js';

/**
 * infra/k8s checked without a cluster: every file parses, every object is of a kind and API
 * version a cluster (with KEDA) knows, and what the manifests assume of the code — the
 * variables it reads, how long a worker takes to stop, the Redis key BullMQ keeps waiting
 * jobs under — is what the code does.
 */

const K8S_DIR = path.resolve('infra/k8s');
/** The kustomize component for a Redis Cluster, patching the base. */
const CLUSTER_DIR = path.join(K8S_DIR, 'redis-cluster');
const NAMESPACE = 'rendermill';

/** The API version each kind must be written with (the stable one, or KEDA's). */
const API_VERSIONS: Record<string, string> = {
  Namespace: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  ScaledObject: 'keda.sh/v1alpha1',
  TriggerAuthentication: 'keda.sh/v1alpha1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
  Component: 'kustomize.config.k8s.io/v1alpha1',
};

/** Loose shape of the Kubernetes objects the assertions look into. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type K8sObject = Record<string, any> & {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
};

interface Manifest {
  file: string;
  object: K8sObject;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
    .map((entry) => entry.name)
    .sort();
}

function loadManifests(dir: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of yamlFiles(dir)) {
    const documents = parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'));
    if (!Array.isArray(documents)) throw new Error(`${file}: not a YAML stream`);
    for (const document of documents) {
      if (document.errors.length > 0) {
        throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
      }
      const object = document.toJS() as K8sObject | null;
      if (object !== null) manifests.push({ file, object });
    }
  }
  return manifests;
}

const manifests = loadManifests(K8S_DIR);
const clusterPatches = loadManifests(CLUSTER_DIR);

function only(kind: string, name?: string): K8sObject {
  const found = manifests.filter(
    (m) => m.object.kind === kind && (name === undefined || m.object.metadata?.name === name),
  );
  if (found.length !== 1)
    throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0]!.object;
}

const deployment = (component: 'api' | 'worker') => only('Deployment', `rendermill-${component}`);
const podSpec = (component: 'api' | 'worker') => deployment(component).spec.template.spec;
const container = (component: 'api' | 'worker') => podSpec(component).containers[0];

/** The environment the pods get: the ConfigMap, then the Secret (envFrom's order: it wins). */
function podEnvironment(component: 'api' | 'worker'): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container(component).envFrom as Record<string, { name: string }>[]) {
    if (source.configMapRef) Object.assign(env, only('ConfigMap', source.configMapRef.name).data);
    if (source.secretRef) Object.assign(env, only('Secret', source.secretRef.name).stringData);
  }
  for (const variable of (container(component).env ?? []) as { name: string; value?: string }[]) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
  }
  return env;
}

/** The names that are not a variable of the environment's schema (env-schema.ts). */
function unknownVariables(names: readonly string[]): string[] {
  return names.filter((name) => !Object.hasOwn(envSchema.shape, name));
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

describe('Kubernetes manifests (infra/k8s)', () => {
  it('parse, and each object has a known kind, its API version, a name and the namespace', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(11);
    expect(clusterPatches.length).toBe(3);
    for (const { file, object } of [...manifests, ...clusterPatches]) {
      const where = `${file}: ${object.kind}`;
      expect(Object.keys(API_VERSIONS), where).toContain(object.kind);
      expect(object.apiVersion, where).toBe(API_VERSIONS[object.kind]);
      if (object.kind === 'Kustomization' || object.kind === 'Component') continue;
      expect(object.metadata?.name, where).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (object.kind === 'Namespace') expect(object.metadata?.name).toBe(NAMESPACE);
      else expect(object.metadata?.namespace, where).toBe(NAMESPACE);
    }
  });

  it('the kustomization applies every manifest but the Secret template', () => {
    const kustomization = only('Kustomization');
    const listed = kustomization.resources as string[];
    expect(kustomization.namespace).toBe(NAMESPACE);
    const files = yamlFiles(K8S_DIR).filter(
      (f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml',
    );
    expect([...listed].sort()).toEqual(files);
    expect(listed).not.toContain('secret.example.yaml');
    // The Redis Cluster component patches objects of the base, and only those.
    const component = clusterPatches.find((m) => m.object.kind === 'Component')!.object;
    const patchFiles = (component.patches as { path: string }[]).map((p) => p.path).sort();
    expect(patchFiles).toEqual(yamlFiles(CLUSTER_DIR).filter((f) => f !== 'kustomization.yaml'));
    for (const { file, object } of clusterPatches.filter((m) => m.object.kind !== 'Component')) {
      expect(() => only(object.kind, object.metadata?.name), file).not.toThrow();
    }
    // The template's values are fake, so that applying it by mistake grants nothing.
    for (const secret of manifests.filter((m) => m.object.kind === 'Secret')) {
      expect(secret.file).toBe('secret.example.yaml');
      for (const [key, value] of Object.entries(secret.object.stringData as object)) {
        expect(String(value), key).toMatch(/^$|FAKE|sha256:0{64}$/);
      }
    }
  });

  it('api: 2 replicas of `rendermill api` on 8080, ready on /readyz, alive on /healthz', () => {
    expect(deployment('api').spec.replicas).toBe(2);
    const api = container('api');
    expect(api.args).toEqual(['api']);
    expect(api.ports).toEqual([
      { name: 'http', containerPort: loadConfig(podEnvironment('api')).port },
    ]);
    expect(api.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(api.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    const service = only('Service', 'rendermill-api');
    expect(service.spec.ports[0].targetPort).toBe('http');
    expect(matches(service.spec.selector, deployment('api').spec.template.metadata.labels)).toBe(
      true,
    );
    expect(matches(service.spec.selector, deployment('worker').spec.template.metadata.labels)).toBe(
      false,
    );
  });

  it('worker: `rendermill worker`, probed on its metrics port 9464, replicas left to KEDA', () => {
    const worker = container('worker');
    expect(worker.args).toEqual(['worker']);
    const metricsPort = loadConfig(podEnvironment('worker')).metricsPort;
    expect(metricsPort).toBe(9464);
    expect(worker.ports).toEqual([{ name: 'metrics', containerPort: metricsPort }]);
    expect(worker.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(worker.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(deployment('worker').spec.replicas).toBeUndefined();
  });

  it("the worker's grace period outlasts its own shutdown: waits cut, calls in flight finished", () => {
    // src/cli/serve-command.ts: waiting jobs get RENDERMILL_SHUTDOWN_GRACE_MS, calls in flight
    // up to RENDERMILL_REQUEST_TIMEOUT_MS, and the process gives itself 5 s more than both.
    const config = loadConfig(podEnvironment('worker'));
    const ownDeadlineSeconds = (config.shutdownGraceMs + config.requestTimeoutMs + 5_000) / 1000;
    expect(ownDeadlineSeconds).toBeGreaterThanOrEqual(130); // 120 s timeout + 10 s grace, at least
    expect(podSpec('worker').terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
      ownDeadlineSeconds,
    );
  });

  it('pods run as non-root, read-only, without capabilities, within resource limits', () => {
    for (const component of ['api', 'worker'] as const) {
      const pod = podSpec(component);
      const c = container(component);
      expect(pod.securityContext.runAsNonRoot, component).toBe(true);
      // The image's user is `node` by name: the kubelet can only check a number.
      expect(pod.securityContext.runAsUser, component).toBeGreaterThan(0);
      expect(c.image, component).toBe('rendermill:latest');
      expect(c.securityContext, component).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      const tmp = (c.volumeMounts as { name: string; mountPath: string }[]).find(
        (m) => m.mountPath === '/tmp',
      );
      expect(
        pod.volumes.find((v: { name: string }) => v.name === tmp?.name)?.emptyDir,
      ).toBeDefined();
      for (const kind of ['requests', 'limits']) {
        expect(c.resources[kind], `${component} ${kind}`).toMatchObject({
          cpu: expect.anything(),
          memory: expect.anything(),
        });
      }
      expect(deployment(component).spec.selector.matchLabels).toEqual(
        deployment(component).spec.template.metadata.labels,
      );
    }
  });

  it('each Deployment has a PodDisruptionBudget selecting its pods, and only them', () => {
    for (const component of ['api', 'worker'] as const) {
      const pdb = only('PodDisruptionBudget', `rendermill-${component}`);
      const selector = pdb.spec.selector.matchLabels as Record<string, string>;
      expect(matches(selector, deployment(component).spec.template.metadata.labels)).toBe(true);
      const other = component === 'api' ? 'worker' : 'api';
      expect(matches(selector, deployment(other).spec.template.metadata.labels)).toBe(false);
    }
    expect(only('PodDisruptionBudget', 'rendermill-api').spec.minAvailable).toBe(1);
    expect(only('PodDisruptionBudget', 'rendermill-worker').spec.maxUnavailable).toBe(1);
  });

  it("KEDA scales the worker Deployment on the render queue's BullMQ wait list", () => {
    const scaled = only('ScaledObject', 'rendermill-worker');
    expect(scaled.spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: 'rendermill-worker',
    });
    expect(deployment('worker').metadata?.name).toBe(scaled.spec.scaleTargetRef.name);
    // Workers also finalize batches, deliver webhooks and run schedules: never scale to zero.
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled.spec.maxReplicaCount).toBeGreaterThan(scaled.spec.minReplicaCount);
    expect(scaled.spec.cooldownPeriod).toBeGreaterThan(0);

    const [trigger, ...others] = scaled.spec.triggers;
    expect(others).toEqual([]);
    expect(trigger.type).toBe('redis');
    const renderQueue = JOB_CATALOG['render-item'].queue;
    const waitList = bullKey(BULL_PREFIX, renderQueue, 'wait');
    expect(waitList).toBe(new QueueKeys(BULL_PREFIX).toKey(renderQueue, 'wait')); // BullMQ's own
    expect(trigger.metadata.listName).toBe(waitList);
    expect(Number(trigger.metadata.listLength)).toBeGreaterThan(0);

    // KEDA reaches the Redis the pods use, with the password the TriggerAuthentication reads.
    const redisUrl = new URL(podEnvironment('worker').REDIS_URL!);
    expect(trigger.metadata.address).toBe(`${redisUrl.hostname}:${redisUrl.port || 6379}`);
    expect(trigger.metadata.databaseIndex).toBe(redisUrl.pathname.slice(1) || '0');
    const auth = only('TriggerAuthentication', trigger.authenticationRef.name);
    const [password] = auth.spec.secretTargetRef;
    expect(password.parameter).toBe('password');
    expect(only('Secret', password.name).stringData).toHaveProperty(password.key);
  });

  it('on a Redis Cluster (component redis-cluster), KEDA reads the hash-tagged wait list', () => {
    const patch = (kind: string) => clusterPatches.find((m) => m.object.kind === kind)!.object;
    const configMap = { ...only('ConfigMap', 'rendermill-config').data };
    for (const [key, value] of Object.entries(patch('ConfigMap').data as object)) {
      if (value === null) delete configMap[key];
      else configMap[key] = value;
    }
    const secret = only('Secret', 'rendermill-secrets').stringData as Record<string, string>;
    const config = loadConfig({ ...configMap, ...secret });
    expect(config.redisUrl).toBeUndefined();
    expect(config.redisCluster?.nodes.length).toBeGreaterThanOrEqual(1);

    const [trigger, ...others] = patch('ScaledObject').spec.triggers;
    expect(others).toEqual([]);
    expect(trigger.type).toBe('redis-cluster');
    const renderQueue = JOB_CATALOG['render-item'].queue;
    expect(trigger.metadata.listName).toBe(bullKey(CLUSTER_BULL_PREFIX, renderQueue, 'wait'));
    expect(trigger.metadata.listName).toBe(
      new QueueKeys(CLUSTER_BULL_PREFIX).toKey(renderQueue, 'wait'),
    );
    expect(trigger.metadata.listName).toMatch(/\{[^}]+\}/); // a hash tag: one slot
    expect(trigger.metadata.addresses).toBe(
      config.redisCluster!.nodes.map((n) => `${n.host}:${n.port}`).join(','),
    );
    expect(trigger.authenticationRef).toEqual(
      only('ScaledObject', 'rendermill-worker').spec.triggers[0].authenticationRef,
    );
    expect(unknownVariables(Object.keys(patch('ConfigMap').data as object))).toEqual([]);
  });

  it('names only variables that the configuration reads, and they make a valid configuration', () => {
    const named = new Set<string>();
    for (const component of ['api', 'worker'] as const) {
      for (const name of Object.keys(podEnvironment(component))) named.add(name);
    }
    expect(named.size).toBeGreaterThan(10);
    expect(unknownVariables([...named])).toEqual([]);
    // The ConfigMap with the template's Secret is what `api` and `worker` need to start.
    for (const component of ['api', 'worker'] as const) {
      const config = loadConfig(podEnvironment(component));
      expect(config.redisUrl, component).toBeDefined();
      expect(config.embedS3, component).toBe(false);
      expect(config.routes[0], component).toBeDefined();
      expect(config.apiKeys.length, component).toBeGreaterThan(0);
    }
  });
});
