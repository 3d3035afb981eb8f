/** IstioOperator and Fleet semantics that the schemas cannot express. */
import type { ObjectReport } from './context.js';
import { arr, checkMinDuration, isObj } from './checks.js';
import type { Json } from './checks.js';

export function validateIstioOperator(spec: Json, report: ObjectReport): void {
  if (typeof spec.revision === 'string' && spec.revision !== '' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(spec.revision)) {
    report.error('spec.revision', `revision ${JSON.stringify(spec.revision)} must be a DNS-1123 label (no dots: use 1-24-1, not 1.24.1)`);
  }
  const mesh = isObj(spec.meshConfig) ? spec.meshConfig : undefined;
  if (mesh) {
    checkMinDuration(report, 'spec.meshConfig.connectTimeout', mesh.connectTimeout);
    const names = new Set<string>();
    arr(mesh.extensionProviders).forEach((provider, i) => {
      if (!isObj(provider) || typeof provider.name !== 'string') return;
      if (names.has(provider.name)) report.error(`spec.meshConfig.extensionProviders[${i}].name`, `extension provider ${JSON.stringify(provider.name)} is defined twice`);
      names.add(provider.name);
    });
  }
}

export function validateFleet(spec: Json, report: ObjectReport): void {
  const clusters = new Map<string, number>();
  arr(spec.clusters).forEach((cluster, i) => {
    if (!isObj(cluster) || typeof cluster.name !== 'string') return;
    if (clusters.has(cluster.name)) report.error(`spec.clusters[${i}].name`, `cluster ${JSON.stringify(cluster.name)} is listed twice`);
    else clusters.set(cluster.name, i);
    if (typeof cluster.overlay === 'string' && (cluster.overlay.startsWith('/') || cluster.overlay.split('/').includes('..'))) {
      report.error(`spec.clusters[${i}].overlay`, `overlay ${JSON.stringify(cluster.overlay)} must be a relative path inside the repository`);
    }
  });
  const staged = new Map<string, string>();
  const stageNames = new Set<string>();
  arr(spec.stages).forEach((stage, i) => {
    if (!isObj(stage)) return;
    if (typeof stage.name === 'string') {
      if (stageNames.has(stage.name)) report.error(`spec.stages[${i}].name`, `stage ${JSON.stringify(stage.name)} is listed twice`);
      stageNames.add(stage.name);
    }
    arr(stage.clusters).forEach((name, j) => {
      if (typeof name !== 'string') return;
      const path = `spec.stages[${i}].clusters[${j}]`;
      if (!clusters.has(name)) report.error(path, `stage ${JSON.stringify(stage.name)} names cluster ${JSON.stringify(name)}, which spec.clusters does not define`);
      const other = staged.get(name);
      if (other !== undefined) report.error(path, `cluster ${JSON.stringify(name)} is already in stage ${JSON.stringify(other)}`);
      else staged.set(name, String(stage.name));
    });
  });
  for (const [name, i] of clusters) {
    if (!staged.has(name)) report.warn(`spec.clusters[${i}]`, `cluster ${JSON.stringify(name)} is in no stage: rollouts never reach it`);
  }
  const rollout = isObj(spec.rollout) ? spec.rollout : undefined;
  if (rollout) {
    const steps = arr(rollout.canarySteps).filter((s): s is number => typeof s === 'number');
    for (let i = 1; i < steps.length; i++) {
      if (steps[i] <= steps[i - 1]) report.error(`spec.rollout.canarySteps[${i}]`, `canary steps must ascend (${steps[i - 1]} then ${steps[i]})`);
    }
    if (steps.length > 0 && steps[steps.length - 1] !== 100) report.error(`spec.rollout.canarySteps[${steps.length - 1}]`, 'the last canary step must be 100');
    if (isObj(rollout.analysis)) checkMinDuration(report, 'spec.rollout.analysis.interval', rollout.analysis.interval, 1000);
  }
}
