/**
 * Load generator for bench/ca: `total` bootstraps against the TLS endpoint, `concurrency` at a
 * time, each on a new TLS connection (as many proxies starting at once). Runs in its own process
 * so the operator side's CPU is measured apart. Prints one JSON line: {seconds}.
 *
 *   node --import tsx bench/ca/clients.ts <url> <root.pem> <tokenSecret> <total> <concurrency>
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { generateKeyAndCsr } from '../../src/security/ca/csr.js';

const [url, rootFile, secret, totalArg, concurrencyArg] = process.argv.slice(2);
const target = new URL(url);
const ca = readFileSync(rootFile, 'utf8');
const total = Number(totalArg);
const concurrency = Number(concurrencyArg);

function bootstrap(csrPem: string): Promise<void> {
  const body = JSON.stringify({ cluster: 'bench', token: secret, csrPem, namespace: 'bench', serviceAccount: 'proxy' });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent: false, ca, servername: 'localhost', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`bootstrap answered ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const identity = { trustDomain: 'cluster.local', namespace: 'bench', serviceAccount: 'proxy' };
const csrs = await Promise.all(Array.from({ length: 50 }, () => generateKeyAndCsr(identity).then((k) => k.csrPem)));
await bootstrap(csrs[0]);
let next = 0;
const started = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < total) await bootstrap(csrs[next++ % csrs.length]);
  }),
);
console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
