// Hostile host files through the real `vmhost` CLI in a lab namespace: a sample of the generated
// files (the first of every class: 24) given to `vmhost apply`, each must exit 3 naming the field,
// and the namespace must be exactly as before (ip -j link/addr/route, iptables-save,
// ip6tables-save, the sysctls apply would set, no process inside, no state directory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { vmhost } from '../helpers/cli.js';
import { hostileCases, writeCases } from '../../test/host/hostile/generate.js';

/** Everything apply could change in namespace `ns`, as text (independent tools: ip, iptables-save, /proc). */
async function snapshot(ns: string): Promise<Record<string, string>> {
  const run = async (cmd: string, args: string[]): Promise<string> => {
    const r = await netns.run(ns, cmd, args);
    assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => !l.startsWith('#')).join('\n'); // iptables-save dates its comments
  };
  const sysctls = ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding', 'net/ipv6/conf/eth0/proxy_ndp', 'net/ipv6/conf/eth0/accept_ra'];
  return {
    links: await run('ip', ['-j', 'link', 'show']),
    addresses: await run('ip', ['-j', 'address', 'show']),
    routes4: await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all']),
    routes6: await run('ip', ['-j', '-6', 'route', 'show', 'table', 'all']),
    neighbours: await run('ip', ['-j', '-6', 'neigh', 'show', 'proxy']),
    iptables: await run('iptables-save', []),
    ip6tables: await run('ip6tables-save', []),
    sysctls: await run('cat', sysctls.map((s) => `/proc/sys/${s}`)),
    processes: JSON.stringify(await netns.pids(ns)),
  };
}

test('hostile host files: vmhost apply exits 3 naming the field and changes nothing in the namespace', async (t) => {
  const lab = await Lab.create({ prefix: 'vmhl-hostile-', namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-hostile-'));
  t.after(async () => {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ns = lab.ns('host');
  const all = writeCases(join(dir, 'files'), hostileCases());
  const sample = all.filter((c, i) => all.findIndex((d) => d.cls === c.cls) === i);
  assert.ok(sample.length >= 20, `${sample.length} files`);
  const stateDir = join(dir, 'state');
  const before = await snapshot(ns);

  // three at a time (each is a node process of about a second)
  const results: Array<{ name: string; path: string; code: number | null; stderr: string }> = [];
  for (let i = 0; i < sample.length; i += 3) {
    results.push(
      ...(await Promise.all(
        sample.slice(i, i + 3).map(async (c) => ({ name: c.name, path: c.path, ...(await vmhost(['--netns', ns, '--state-dir', stateDir, 'apply', c.file])) })),
      )),
    );
  }
  for (const r of results) {
    assert.equal(r.code, 3, `${r.name}: exit ${r.code}: ${r.stderr.slice(0, 500)}`);
    if (r.path !== '') assert.ok(r.stderr.includes(`: ${r.path}: `), `${r.name}: stderr does not name ${r.path}: ${r.stderr.slice(0, 500)}`);
    assert.match(r.stderr, /is not a valid host file/, r.name);
  }
  assert.deepEqual(await snapshot(ns), before, 'the namespace is exactly as before');
  assert.equal(existsSync(stateDir), false, 'no state directory was made');
  console.log(`hostile (CLI): ${results.length} files, each exit 3, namespace unchanged (${sample.map((c) => c.cls).join(', ')})`);
});
