// Starts the IPv6 proxy service from a process with a given open-file limit, which the service
// inherits (the limit of the calling process stays as it is: lowering a hard limit cannot be
// undone without CAP_SYS_RESOURCE). Prints startProxyService's result as one JSON line.
//
//   node --conditions=vmhost-source --import tsx start-proxy.ts MODULE SOFT HARD OPTIONS_JSON
//
// MODULE is the proxy6 module whose startProxyService is called (a path: the bench also starts
// an older version of it).
import { setNoFileLimit } from '@vmhost/net';

const [mod, soft, hard, json] = process.argv.slice(2);
if (!mod || !soft || !hard || !json) throw new Error('usage: start-proxy.ts MODULE SOFT HARD OPTIONS_JSON');
setNoFileLimit({ soft: Number(soft), hard: Number(hard) });
const { startProxyService } = (await import(mod)) as { startProxyService(o: unknown): Promise<unknown> };
process.stdout.write(`${JSON.stringify(await startProxyService(JSON.parse(json)))}\n`);
