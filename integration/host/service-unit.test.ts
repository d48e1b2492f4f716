// `vmhost systemd-unit` checked by systemd itself: the unit the real CLI prints passes
// `systemd-analyze verify` (which loads it as systemd would: every key known, ExecStart's binary
// there and absolute), and a unit broken on purpose does not (the oracle can fail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmhost } from '../helpers/cli.js';

function verify(file: string): { code: number | null; out: string } {
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

test('the unit of vmhost systemd-unit passes systemd-analyze verify; a broken one does not', (t) => {
  if (spawnSync('systemd-analyze', ['--version']).status !== 0) return t.skip('systemd-analyze is not installed');
  return (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmhost-unit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'my host.yaml');
    writeFileSync(file, 'name: web\nuplink: eth0\nonStop: keep\nbridge: { name: br0, ipv4: 192.168.0.1/24 }\nvms: []\n');
    const r = await vmhost(['--netns', 'lab', '--state-dir', '/run/vmhost/lab-web', 'systemd-unit', file, '--json', '--metrics', '127.0.0.1:9464']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ExecStart=\/\S+ .* --netns lab --state-dir \/run\/vmhost\/lab-web --json --metrics 127\.0\.0\.1:9464 run "\/tmp\/vmhost-unit-\w+\/my host\.yaml"$/m);
    assert.match(r.stdout, /^TimeoutStopSec=30s$/m, 'onStop keep');
    const unit = join(dir, 'vmhost-web.service');
    writeFileSync(unit, `${r.stdout}\n`);
    assert.deepEqual(verify(unit), { code: 0, out: '' });
    const bad = join(dir, 'vmhost-bad.service');
    writeFileSync(bad, r.stdout.replace(/^ExecStart=\/\S+/m, 'ExecStart=relative/node'));
    const b = verify(bad);
    assert.notEqual(b.code, 0);
    assert.match(b.out, /bad unit file setting|Neither a valid executable name nor an absolute path/);
  })();
});
