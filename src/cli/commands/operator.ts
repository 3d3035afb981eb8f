import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { loadGitAuth } from '../../reconciler/credentials.js';
import type { TrackedRef } from '../../reconciler/git-source.js';
import { ControlPlane } from '../../reconciler/control-plane.js';
import { Operator, type OperatorOptions } from '../../reconciler/operator.js';
import { parseDuration, type Schedule } from '../../reconciler/schedule.js';
import { redactOptions } from '../../security/index.js';

interface OperatorCliOptions {
  repo: string;
  branch?: string;
  tag?: string;
  commit?: string;
  interval: string;
  cron?: string;
  webhookSecretFile?: string;
  gitCredentialsFile?: string;
  gitCaFile?: string;
  stateDir: string;
  host: string;
  port: string;
  kubeconfig?: string;
  kubeNamespace?: string;
  statusBranch: string;
  gitStatus: boolean;
  leaderElection: 'auto' | 'file' | 'lease' | 'none';
  timeout: string;
  logLevel: string;
  gitopsOnly: boolean;
  discoveryHost: string;
  discoveryPort: string;
  discoveryTlsCert?: string;
  discoveryTlsKey?: string;
  discoveryTlsCa?: string;
  rolloutTick: string;
  clusters?: string;
  trustDomain: string;
  meshCa: boolean;
  discoveryMtls: boolean;
  verifySshSigners?: string;
  verifyGpgKeyring?: string;
  bootstrapPort?: string;
  serverName: string[];
}

/** Resolves --branch/--tag/--commit (exactly one, default branch main). */
export function trackedRefFromFlags(o: { branch?: string; tag?: string; commit?: string }): TrackedRef {
  const given = [o.branch && 'branch', o.tag && 'tag', o.commit && 'commit'].filter(Boolean);
  if (given.length > 1) throw new Error(`--branch, --tag and --commit are exclusive (got ${given.map((g) => `--${g}`).join(', ')})`);
  if (o.commit) {
    if (!/^[0-9a-f]{40}$/i.test(o.commit)) throw new Error(`--commit: expected a full 40-hex commit id, got ${JSON.stringify(o.commit)}`);
    return { commit: o.commit.toLowerCase() };
  }
  if (o.tag) return { tag: o.tag };
  return { branch: o.branch ?? 'main' };
}

function port(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag}: expected a port number 0-65535, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * `trellis operator`: the control plane (GitOps loop + rollout engine + discovery server, see
 * ControlPlane), or with --gitops-only the GitOps loop alone. JSON logs, clean shutdown on SIGTERM.
 */
export function register(program: Command): void {
  program
    .command('operator')
    .description('run the Trellis operator: follow the config repository, validate, render, hand over, write status')
    .requiredOption('--repo <url|path>', 'config repository: smart-HTTP(S) URL or local repository path')
    .option('--branch <name>', 'track a branch (default main)')
    .option('--tag <name>', 'track a tag')
    .option('--commit <sha>', 'pin one commit')
    .option('--interval <duration>', 'poll interval (30s, 1m, …)', '30s')
    .option('--cron <expr>', 'poll on a cron schedule instead of an interval')
    .option('--webhook-secret-file <file>', 'HMAC secret for POST /hooks/git (without it the webhook is off)')
    .option('--git-credentials-file <file>', 'YAML/JSON {username, password} or {token}; else TRELLIS_GIT_* env vars')
    .option('--verify-ssh-signers <file>', 'apply only commits SSH-signed by a key of this allowed-signers file (git\'s gpg.ssh.allowedSignersFile format)')
    .option('--verify-gpg-keyring <file>', 'apply only commits OpenPGP-signed by a key of this keyring (gpg --export KEYID > FILE)')
    .option('--git-ca-file <file>', 'PEM CA bundle trusted for an https:// repository with a private CA')
    .option('--state-dir <dir>', 'clone cache, snapshots, lock file', '.trellis/operator')
    .option('--host <addr>', 'HTTP bind address', '0.0.0.0')
    .option('--port <n>', 'HTTP port for /v1/status, /metrics, /healthz, /readyz, /hooks/git', '8080')
    .option('--kubeconfig <file>', 'write ClusterStatus resources and use a Lease (a path, or in-cluster)')
    .option('--kube-namespace <ns>', 'namespace of ClusterStatus objects and the Lease (default: context namespace or trellis-system)')
    .option('--status-branch <name>', 'branch the operator commits status/<cluster>.yaml to', 'trellis-status')
    .option('--no-git-status', 'do not write status to git')
    .option('--leader-election <mode>', 'auto | file | lease | none', 'auto')
    .option('--timeout <duration>', 'deadline of one git network operation', '60s')
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--discovery-host <addr>', 'discovery server bind address', '0.0.0.0')
    .option('--discovery-port <n>', 'discovery server port (proxies connect here)', '15010')
    .option('--discovery-tls-cert <file>', 'discovery server certificate (PEM); with --discovery-tls-key')
    .option('--discovery-tls-key <file>', 'discovery server private key (PEM)')
    .option('--discovery-tls-ca <file>', 'CA bundle; when set, proxies must present client certificates (mTLS)')
    .option('--rollout-tick <duration>', 'how often the rollout engine looks at the fleet', '500ms')
    .option('--clusters <names>', 'comma-separated clusters this instance manages (default: every Fleet cluster)')
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh CA (the meshConfig trustDomain)', 'cluster.local')
    .option('--no-mesh-ca', 'no mesh CA and no POST /v1/bootstrap (proxies then run without mTLS)')
    .option('--no-discovery-mtls', 'serve discovery in plaintext; by default, with the mesh CA, discovery is mutual TLS and proxies connect with the workload certificates they bootstrapped')
    .option('--bootstrap-port <n>', 'TLS port of POST /v1/bootstrap (default: any free port; GET /v1/bootstrap on the API names it)')
    .option('--server-name <name>', 'extra DNS name or IP in the operator\'s serving certificate (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--gitops-only', 'no discovery server or rollout engine: an applied commit is what runs', false)
    .action(async (o: OperatorCliOptions) => {
      const logger = pino({ name: 'trellis-operator', level: o.logLevel, ...redactOptions });
      const ref = trackedRefFromFlags(o);
      const schedule: Schedule = o.cron ? { cron: o.cron } : { intervalMs: parseDuration(o.interval) };
      const webhookSecret = o.webhookSecretFile ? (await readFile(o.webhookSecretFile, 'utf8')).trim() : undefined;
      if (o.webhookSecretFile && !webhookSecret) throw new Error(`--webhook-secret-file ${o.webhookSecretFile} is empty`);
      const auth = await loadGitAuth({ file: o.gitCredentialsFile });
      if (!['auto', 'file', 'lease', 'none'].includes(o.leaderElection)) throw new Error(`--leader-election: expected auto, file, lease or none, got ${o.leaderElection}`);
      const common: OperatorOptions = {
        repo: o.repo,
        ref,
        schedule,
        stateDir: resolve(o.stateDir),
        host: o.host,
        port: port(o.port, '--port'),
        webhookSecret,
        auth,
        gitCa: o.gitCaFile ? await readFile(o.gitCaFile) : undefined,
        timeoutMs: parseDuration(o.timeout),
        ...(o.verifySshSigners || o.verifyGpgKeyring
          ? { signaturePolicy: { sshAllowedSignersFile: o.verifySshSigners ? resolve(o.verifySshSigners) : undefined, gpgKeyringFile: o.verifyGpgKeyring ? resolve(o.verifyGpgKeyring) : undefined } }
          : {}),
        statusBranch: o.gitStatus ? o.statusBranch : (false as const),
        kubeconfig: o.kubeconfig,
        kubeNamespace: o.kubeNamespace,
        leaderElection: o.leaderElection,
        logger,
      };
      let operator: { start(): Promise<void>; stop(): Promise<void> };
      if (o.gitopsOnly) operator = new Operator(common);
      else {
        if (Boolean(o.discoveryTlsCert) !== Boolean(o.discoveryTlsKey)) throw new Error('--discovery-tls-cert and --discovery-tls-key go together');
        const tls = o.discoveryTlsCert
          ? {
              cert: await readFile(o.discoveryTlsCert),
              key: await readFile(o.discoveryTlsKey!),
              ...(o.discoveryTlsCa ? { ca: await readFile(o.discoveryTlsCa) } : {}),
            }
          : undefined;
        operator = new ControlPlane({
          ...common,
          clusters: o.clusters ? o.clusters.split(',').map((c) => c.trim()).filter(Boolean) : undefined,
          discovery: { host: o.discoveryHost, port: port(o.discoveryPort, '--discovery-port'), tls },
          rolloutTickMs: parseDuration(o.rolloutTick),
          security: o.meshCa
            ? {
                trustDomain: o.trustDomain,
                discoveryMtls: o.discoveryMtls,
                ...(o.bootstrapPort ? { bootstrapPort: port(o.bootstrapPort, '--bootstrap-port') } : {}),
                ...(o.serverName.length > 0 ? { serverNames: o.serverName } : {}),
              }
            : false,
        });
      }
      await operator.start();
      await new Promise<void>((done) => {
        let stopping = false;
        const shutdown = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal }, 'shutting down');
          operator.stop().then(done, (err: unknown) => {
            logger.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
            done();
          });
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
      });
      logger.flush?.();
    });
}
