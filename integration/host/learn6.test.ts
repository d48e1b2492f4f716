// ipv6.learn end to end: a VM that uses a second global address (as SLAAC or a privacy address
// gives a real guest; the test guest's `vmhost.ip6b=`) is reachable on it from `internet` only
// once `vmhost run` has learnt it from the bridge's neighbour table, and no longer once the
// neighbour is gone. The seed's provider network (routed mode: the provider asks for each VM
// address on the uplink, the host answers with proxy NDP), the real CLI, one test guest; each
// step checked with `ip -j` and with real traffic from `internet`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { parseHostFile, type ServiceEvent } from '@vmhost/host';
import { vmhost } from '../helpers/cli.js';
import { cleanUp } from '../helpers/cleanup.js';
import { guestsReady } from '../helpers/fault-env.js';
import { ipJson } from '../helpers/ns.js';
import { Service, answers, banner } from '../helpers/service-run.js';
import { providerLab } from '../helpers/vm-lab.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GUEST = join(ROOT, '.cache', 'guest');
const MAC = 'de:ad:be:ef:32:10';
const OWN = '2001:db8:8:5688::100';
const OTHER = '2001:db8:8:5688::beef';
const BANNER = 'SSH-2.0-vmhost-guest web';

function hostText(learn: boolean): string {
  return `name: lrn
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed, learn: ${learn} }
vms:
  - name: web
    mac: "${MAC}"
    ipv4: 192.168.0.100
    ipv6: "${OWN}"
    isolation: false
    memoryMiB: 128
    kernel: ${join(GUEST, 'vmlinux')}
    initrd: ${join(GUEST, 'initrd.img')}
    append: "console=ttyS0 panic=-1 quiet vmhost.name=web vmhost.ip6=${OWN}/128 vmhost.ip6b=${OTHER}/128 vmhost.gw6=2001:db8:8:5688::1"
    forwards: [{ port: 2222, toPort: 22 }]
`;
}

/** Whether a run event (a repair or a reload) took the step `id`. */
const took = (id: string) => (e: ServiceEvent): boolean => (e.type === 'repair' || e.type === 'reload' || e.type === 'applied') && (e.steps ?? []).some((s) => s.id === id);

/** The host's proxy neighbours (`ip -6 neigh show proxy`): address → device. */
async function proxies(ns: string): Promise<Map<string, string>> {
  const list = await ipJson<Array<{ dst: string; dev: string }>>(ns, ['-6', 'neigh', 'show', 'proxy']);
  return new Map(list.map((n) => [n.dst, n.dev]));
}

/** The host's route to `address`/128, if there is one (`ip -6 route show exact`). */
async function hostRoute(ns: string, address: string): Promise<{ dev: string } | undefined> {
  return (await ipJson<Array<{ dev: string }>>(ns, ['-6', 'route', 'show', 'exact', `${address}/128`]))[0];
}

test('ipv6.learn: a second address the VM uses is published (proxy neighbour on the uplink, /128 route to the bridge) once learnt from the bridge, reachable from internet; withdrawn when its neighbour goes', async (t) => {
  const { lab, host: ns, internet: inet } = await providerLab('vmhl-lrn-');
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-learn-'));
  const stateDir = join('/run/vmhost-svc-test', ns);
  const file = join(dir, 'host.yaml');
  const g = ['--netns', ns, '--state-dir', stateDir, '--data-dir', join(dir, 'data')];
  writeFileSync(file, hostText(false));
  let svc: Service | undefined;
  // the service first (it holds the state directory's lock), then down, then the lab and the files
  cleanUp(t, lab, stateDir, dir).downFirst(async () => {
    const child = svc?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await vmhost([...g, 'down', file]);
  });

  svc = new Service([...g, 'run', file]);
  await svc.wait('the first apply', (e) => e.type === 'applied', 0, 120_000);
  await guestsReady({ host: parseHostFile(hostText(false), { baseDir: ROOT }), opts: { stateDir } });
  await answers(inet, OWN, 22, BANNER);

  // learning off: the host finds the guest on its second address through the bridge (a neighbour
  // with the VM's MAC there; the uplink has the /64 on-link too, so the ping names the bridge),
  // and still does not publish it
  const ping = await netns.run(ns, '/bin/busybox', ['ping', '-6', '-I', 'br0', '-c', '1', '-W', '5', OTHER], { timeoutMs: 10_000 });
  assert.equal(ping.code, 0, `the host reaches ${OTHER} on the bridge: ${ping.stdout}${ping.stderr}`);
  const neigh = await ipJson<Array<{ dst: string; lladdr?: string }>>(ns, ['-6', 'neigh', 'show', 'dev', 'br0']);
  assert.equal(neigh.find((n) => n.dst === OTHER)?.lladdr, MAC, `a neighbour ${OTHER} with the VM's MAC: ${JSON.stringify(neigh)}`);
  assert.equal((await proxies(ns)).get(OTHER), undefined, 'learning off: no proxy neighbour');
  assert.equal(await banner(inet, OTHER, 22), '', 'learning off: not reachable from internet');
  assert.equal(svc.events.some((e) => e.address === OTHER), false, 'learning off: nothing learnt');

  // learning on (the host file edited, the running service reloads): the neighbour already in the
  // table is learnt as the reload reads the table (no new neighbour event needed), and published
  // by the reload's own apply
  let m = svc.mark;
  writeFileSync(file, hostText(true));
  const reload = await svc.wait('the reload', (e) => e.type === 'reload', m);
  const learnt = svc.events.slice(m).find((e) => e.type === 'learn' && e.address === OTHER);
  assert.ok(learnt && svc.events.indexOf(learnt) < svc.events.indexOf(reload), `learnt in the reload: ${svc.events.slice(m).map((e) => `${e.type}: ${e.message}`).join(' | ')}`);
  assert.equal(learnt.vm, 'web');
  assert.deepEqual(['firewall', `proxyNeighbor:eth0:${OTHER}`, `route:${OTHER}/128`].filter((id) => !took(id)(reload)), [], `the reload published it: ${reload.message}`);
  assert.equal((await proxies(ns)).get(OTHER), 'eth0', 'a proxy neighbour on the uplink');
  assert.equal((await hostRoute(ns, OTHER))?.dev, 'br0', 'a /128 route to the bridge');
  await answers(inet, OTHER, 22, BANNER);
  assert.equal((await proxies(ns)).get(OWN), 'eth0', "the VM's own address is published as before");

  // the neighbour deleted (the VM no longer answers for the address): withdrawn
  m = svc.mark;
  await netns.run(ns, 'ip', ['-6', 'neigh', 'del', OTHER, 'dev', 'br0']);
  await svc.wait(`${OTHER} unlearnt`, (e) => e.type === 'unlearn' && e.address === OTHER, m);
  await svc.wait('its route removed', took(`route:${OTHER}/128`), m);
  assert.equal((await proxies(ns)).get(OTHER), undefined, 'the proxy neighbour is gone');
  assert.equal(await hostRoute(ns, OTHER), undefined, 'the /128 route is gone');
  assert.equal(await banner(inet, OTHER, 22), '', 'not reachable from internet any more');
  await answers(inet, OWN, 22, BANNER);

  const end = await svc.stop('SIGTERM');
  assert.equal(end.code, 0, end.stderr);
});
