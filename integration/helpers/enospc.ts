// Runs `vmhost` command lines (in this process) with the state directory on a tiny tmpfs that is
// nearly full, in a mount namespace of its own. Run it as
//   unshare --mount --propagation private -- node ... enospc.ts <mountpoint> <free bytes>
// It mounts a 256 KiB tmpfs (mode 0700) on <mountpoint> (a directory of root's) and fills it up to
// <free bytes>. Then, for each line read on stdin: a JSON array of arguments runs that vmhost
// command line and prints {"code", "stdout", "stderr"} as one JSON line; `free` removes the filler
// and prints {"free": bytes}. The mount exists only in this process's mount namespace: the
// machine's own mounts never see it, and it is gone when the process ends (stdin closed).
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { main } from '../../packages/host/src/cli.js';

const [mountpoint, freeText] = process.argv.slice(2);
if (!mountpoint || !freeText) throw new Error('usage: enospc.ts <mountpoint> <free bytes>');
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mountpoint]);
const freeBytes = (): number => {
  const st = statfsSync(mountpoint);
  return Number(st.bavail) * Number(st.bsize);
};
const filler = join(mountpoint, 'filler');
const fd = openSync(filler, 'wx', 0o600);
writeSync(fd, Buffer.alloc(freeBytes() - Number(freeText)));
closeSync(fd);
const say = (v: unknown): Promise<void> => new Promise((r) => process.stdout.write(`${JSON.stringify(v)}\n`, () => r()));
await say({ free: freeBytes() });
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'free') {
    rmSync(filler);
    await say({ free: freeBytes() });
    continue;
  }
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(JSON.parse(line) as string[], { out: (s) => out.push(s), err: (s) => err.push(s) });
  await say({ code, stdout: out.join('\n'), stderr: err.join('\n') });
}
process.exit(0);
