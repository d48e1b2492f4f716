// Hostile host files, generated: each is a valid host file with one thing an attacker (or an
// unlucky operator) would try, and the path of the field a HostSpecError must name for it ('' for
// the file itself: size, depth, syntax). Classes: interface names, VM and host names, lease times,
// prefixes, special addresses, proxy limits, strings bound for config files and command lines,
// duplicate keys, YAML tags and directives, depth, size, encodings, type confusion, prototype
// keys, look-alikes, long strings, forwards, counts.
//
// Used by hostile.test.ts (every case through loadHostFile), integration/host/hostile.test.ts (a
// sample through the real CLI in a namespace) and schema.test.ts (the cases a JSON Schema can
// express must fail it). `node --import tsx test/host/hostile/generate.ts DIR` writes them to DIR.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** One hostile host file. */
export interface HostileCase {
  /** Unique; the file name is this plus `.yaml` or `.json`. */
  name: string;
  /** The class of attack. */
  cls: string;
  format: 'yaml' | 'json';
  /** The file's bytes. */
  bytes: Buffer;
  /** The path that one of the problems must name (`''`: the file itself). */
  path: string;
  /** The data, for cases made from data (not from text): what a JSON Schema validator sees. */
  data?: unknown;
  /** Whether a JSON Schema can tell that the data is wrong (schema.test.ts expects those to fail it). */
  schema: boolean;
}

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A valid host: every section, two VMs with forwards, routed IPv6. */
export function baseHost(): Json {
  return {
    name: 'hostile',
    uplink: 'eth0',
    publicIPv4: '203.0.113.2',
    bridge: { name: 'br0', mac: 'de:ad:be:ef:24:31', veth: { name: 'veth0', peer: 'veth1' }, ipv4: '192.168.0.1/24', ipv6: '2001:db8:8:5688::1/64', stp: false },
    dhcp: { range: ['192.168.0.100', '192.168.0.150'], leaseTime: '12h', domain: 'lan', dnsServers: ['198.51.100.53'] },
    ipv6: { prefix: '2001:db8:8:5688::/64', mode: 'routed', acceptRa: false, proxy: { maxConnections: 256 } },
    vms: [
      { name: 'web', mac: 'de:ad:be:ef:32:10', ipv4: '192.168.0.100', ipv6: '2001:db8:8:5688::100', kernel: '/boot/vmlinuz', append: 'console=ttyS0', autostart: false, forwards: [{ port: 1234, toPort: 22 }, { port: 80 }] },
      { name: 'mail', ipv4: '192.168.0.200', ipv6: '2001:db8:8:5688::200', memoryMiB: 512, disk: [{ file: '/srv/vm/mail.qcow2', format: 'qcow2' }], autostart: false, forwards: [{ port: 25 }] },
    ],
  };
}

/** Sets `value` at a dotted path with `[i]` indexes (creating nothing: the path exists in the base). */
function set(obj: Json, path: string, value: unknown): void {
  const parts = path.match(/[^.[\]]+/g)!;
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p];
  o[parts[parts.length - 1]!] = value;
}

export function hostileCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const names = new Set<string>();
  const add = (c: HostileCase): void => {
    if (names.has(c.name)) throw new Error(`duplicate case name ${c.name}`);
    names.add(c.name);
    out.push(c);
  };
  /** A case from data: the base changed by `edit`, as YAML and (unless `yamlOnly`) as JSON. */
  const data = (cls: string, name: string, path: string, edit: (h: Json) => void, o: { schema?: boolean; yamlOnly?: boolean; jsonOnly?: boolean } = {}): void => {
    const h = baseHost();
    edit(h);
    const schema = o.schema ?? true;
    if (!o.jsonOnly) add({ name: `${cls}-${name}`, cls, format: 'yaml', bytes: Buffer.from(stringify(h)), path, data: h, schema });
    if (!o.yamlOnly) add({ name: `${cls}-${name}-json`, cls, format: 'json', bytes: Buffer.from(JSON.stringify(h, null, 2)), path, data: h, schema });
  };
  const setCase = (cls: string, name: string, path: string, value: unknown, o: { schema?: boolean; yamlOnly?: boolean; jsonOnly?: boolean } = {}): void =>
    data(cls, name, path, (h) => set(h, path, value), o);
  /** A case from text. */
  const text = (cls: string, name: string, format: 'yaml' | 'json', path: string, t: string | Buffer): void =>
    add({ name: `${cls}-${name}`, cls, format, bytes: typeof t === 'string' ? Buffer.from(t) : t, path, schema: false });
  const baseYaml = (): string => stringify(baseHost());
  const baseJson = (): string => JSON.stringify(baseHost(), null, 2);

  // --- interface names: what ip accepts but config files read otherwise (dnsmasq interface=, iptables -i, sysctl paths)
  const badIf: Array<[string, string]> = [
    ['comma', 'eth0,eth0'], ['plus', 'br+'], ['dquote', 'br"0'], ['squote', "br'0"], ['space', 'br 0'], ['slash', 'br/0'], ['colon', 'br:0'],
    ['dot', '.'], ['dotdot', '..'], ['dash', '-br0'], ['percent', 'br%d'], ['hash', 'br#0'], ['newline', 'br0\ninterface=eth0'], ['nul', 'br\u00000'],
    ['long', 'abcdefghijklmnop'], ['fullwidth', 'ｂr0'], ['lo', 'lo'], ['all', 'all'], ['default', 'default'], ['empty', ''],
  ];
  for (const [n, v] of badIf) setCase('ifname', `bridge-${n}`, 'bridge.name', v, { yamlOnly: n !== 'comma' && n !== 'plus' });
  for (const [n, v] of badIf.filter((_, i) => i % 2 === 0)) setCase('ifname', `uplink-${n}`, 'uplink', v, { yamlOnly: true });
  for (const [n, v] of badIf.filter((_, i) => i % 3 === 0)) setCase('ifname', `veth-${n}`, 'bridge.veth.peer', v, { yamlOnly: true });

  // --- VM and host names (TAPs, DNS names in dnsmasq.conf, firewall chains)
  for (const [n, v] of [['trailing-dash', 'web-'], ['upper', 'Web'], ['digit-first', '1web'], ['underscore', 'we_b'], ['long', 'abcdefghijkl'], ['cyrillic', 'wеb'], ['empty', ''], ['dot', 'we.b'], ['newline', 'web\nhost-record=x']] as const) {
    setCase('vmname', n, 'vms[0].name', v, { yamlOnly: n !== 'trailing-dash' });
  }
  data('vmname', 'chain-too-long', 'vms[0].name', (h) => {
    h.name = 'abcdefghijklmnop'; // 16, the most a host name may have
    h.vms[0].name = 'webserver-1'; // 11: VMHOST-abcdefghijklmnop-webserver_1-D is 36 > 28
  }, { schema: false });
  for (const [n, v] of [['dash', 'my-host'], ['long', 'a'.repeat(17)], ['empty', ''], ['slash', '../etc'], ['space', 'my host']] as const) setCase('hostname', n, 'name', v, { yamlOnly: true });

  // --- lease times dnsmasq would take otherwise (or not at all)
  for (const [n, v, schema] of [
    ['zero', 0, true], ['zero-text', '0', true], ['zero-hours', '0h', true], ['one-minute', '1m', false], ['119s', '119', false], ['huge', '99999999999h', true],
    ['366d', '366d', false], ['53w', '53w', false], ['negative', -5, true], ['fraction', 1.5, true], ['words', '12 hours', true], ['trailing-space', 'infinite ', true], ['bool', true, true], ['exp', '1e3', true],
  ] as const) {
    setCase('leasetime', n, 'dhcp.leaseTime', v, { schema, yamlOnly: n !== 'zero' && n !== 'huge' });
  }

  // --- prefixes: no room for VMs, or everything
  for (const [n, v, schema] of [
    ['slash0', '192.168.0.1/0', true], ['slash7', '10.0.0.1/7', true], ['slash31', '192.168.0.1/31', true], ['slash32', '192.168.0.1/32', true],
    ['this-net', '0.0.0.1/8', true], ['loopback', '127.0.0.1/8', true], ['multicast', '224.0.0.1/24', true], ['reserved', '240.0.0.1/24', true],
    ['link-local', '169.254.0.1/16', true], ['link-local-wide', '169.0.0.1/8', false], ['network', '192.168.0.0/24', false], ['broadcast', '192.168.0.255/24', false], ['no-length', '192.168.0.1', true],
  ] as const) {
    data('prefix', `bridge4-${n}`, 'bridge.ipv4', (h) => {
      h.bridge.ipv4 = v;
      delete h.dhcp; // the range and VM addresses would be reported too
      h.vms = [];
      delete h.publicIPv4;
    }, { schema, yamlOnly: !n.startsWith('slash') });
  }
  for (const [n, v] of [['loopback', '::1/128'], ['link-local', 'fe80::1/64'], ['multicast', 'ff02::1/64'], ['slash8', '2001:db8::1/8']] as const) {
    data('prefix', `bridge6-${n}`, 'bridge.ipv6', (h) => {
      h.bridge.ipv6 = v;
      delete h.ipv6;
      for (const vm of h.vms) delete vm.ipv6;
    }, { schema: n === 'slash8', yamlOnly: true });
  }
  for (const [n, v, schema] of [['all', '::/0', true], ['global', '2000::/3', true], ['link-local', 'fe80::/64', false], ['multicast', 'ff00::/8', true], ['slash127', '2001:db8::/127', true], ['slash128', '2001:db8::/128', true]] as const) {
    data('prefix', `ipv6-${n}`, 'ipv6.prefix', (h) => {
      h.ipv6.prefix = v;
      delete h.bridge.ipv6;
      h.ipv6.mode = 'proxy';
      for (const vm of h.vms) delete vm.ipv6;
    }, { schema, yamlOnly: n !== 'all' });
  }

  // --- special addresses
  for (const [n, v, schema] of [
    ['zero', '0.0.0.0', true], ['broadcast', '255.255.255.255', true], ['multicast', '224.0.0.1', true], ['loopback', '127.0.0.1', true], ['link-local', '169.254.1.1', true],
    ['reserved', '240.0.0.1', true], ['in-bridge', '192.168.0.50', false], ['ipv6', '::1', true], ['with-length', '203.0.113.7/32', true], ['leading-zero', '203.0.113.07', true],
  ] as const) {
    setCase('address', `public-${n}`, 'publicIPv4', v, { schema, yamlOnly: n !== 'zero' && n !== 'in-bridge' });
  }
  for (const [n, v, schema] of [
    ['zero', '0.0.0.0', true], ['unspecified6', '::', false], ['multicast', '224.0.0.251', true], ['multicast6', 'ff02::fb', false], ['broadcast', '255.255.255.255', true],
    ['link-local6', 'fe80::1', false], ['mapped', '::ffff:198.51.100.53', false], ['name', 'dns.example', true], ['zone', 'fe80::1%eth0', true],
  ] as const) {
    setCase('address', `dns-${n}`, 'dhcp.dnsServers[0]', v, { schema, yamlOnly: n !== 'zero' });
  }
  data('address', 'dns-duplicate', 'dhcp.dnsServers[1]', (h) => (h.dhcp.dnsServers = ['198.51.100.53', '198.51.100.53']), { yamlOnly: true });
  setCase('address', 'dns-seventeen', 'dhcp.dnsServers', Array.from({ length: 17 }, (_, i) => `198.51.100.${i + 1}`), { yamlOnly: true });

  // --- the IPv6 proxy: connection caps and listeners past its file budget
  for (const [n, v] of [['million', 1_000_000], ['over', 4097], ['zero', 0], ['negative', -1], ['fraction', 1.5], ['text', '256']] as const) {
    setCase('proxy', `maxconn-${n}`, 'ipv6.proxy.maxConnections', v, { yamlOnly: n !== 'million' });
  }
  setCase('proxy', 'idle-1ms', 'ipv6.proxy.idleTimeoutMs', 1, { yamlOnly: true });
  setCase('proxy', 'idle-past-timer', 'ipv6.proxy.idleTimeoutMs', 2 ** 31, { yamlOnly: true });
  setCase('proxy', 'connect-zero', 'ipv6.proxy.connectTimeoutMs', 0, { yamlOnly: true });
  data('proxy', 'sixty-thousand-ports', 'vms[0].forwards[0].port', (h) => {
    h.ipv6.mode = 'proxy';
    h.vms[0].forwards = [{ port: [1000, 61000] }];
    h.vms[1].forwards = [];
  }, { schema: false });
  data('proxy', 'ports-over-vms', 'vms[1].forwards[1].port', (h) => {
    h.ipv6.mode = 'proxy';
    h.vms[0].forwards = [{ port: [10000, 10999] }];
    h.vms[1].forwards = [{ port: [20000, 20010] }, { port: [30000, 30020] }];
  }, { schema: false, yamlOnly: true });

  // --- strings bound for QEMU arguments and files: command line, paths
  for (const [n, v, schema] of [
    ['too-long', `console=ttyS0 ${'x'.repeat(2040)}`, true], ['newline', 'console=ttyS0\ninit=/bin/sh', true], ['nul', 'console=ttyS0\u0000x', true],
    ['non-ascii', 'console=ttyS0 é', true], ['tab', 'console=ttyS0\tquiet', true], ['fifty-kb', 'x'.repeat(50_000), true],
  ] as const) {
    setCase('cmdline', n, 'vms[0].append', v, { schema, yamlOnly: n !== 'newline' && n !== 'too-long' });
  }
  for (const [n, field, v] of [
    ['kernel-newline', 'vms[0].kernel', '/boot/vmlinuz\n-drive file=/etc/shadow'], ['kernel-nul', 'vms[0].kernel', '/boot/vm\u0000linuz'], ['kernel-rtl', 'vms[0].kernel', '/boot/\u202ezuniLmv'],
    ['kernel-proc', 'vms[0].kernel', '/proc/kcore'], ['kernel-sys', 'vms[0].kernel', '/sys/firmware/efi/efivars/x'], ['kernel-devmem', 'vms[0].kernel', '/dev/mem'],
    ['disk-proc', 'vms[1].disk[0].file', '/proc/self/mem'], ['disk-empty', 'vms[1].disk[0].file', ''], ['disk-long', 'vms[1].disk[0].file', `/srv/${'d/'.repeat(2100)}x.img`],
    ['disk-zero-width', 'vms[1].disk[0].file', '/srv/vm/mail\u200b.qcow2'], ['disk-bell', 'vms[1].disk[0].file', '/srv/vm/\u0007mail.qcow2'],
  ] as const) {
    setCase('path', n, field, v, { yamlOnly: n !== 'kernel-newline' && n !== 'disk-proc' });
  }
  text('path', 'lone-surrogate', 'json', 'vms[0].kernel', baseJson().replace('"/boot/vmlinuz"', '"/boot/\\ud800vmlinuz"'));
  setCase('dnsconf', 'domain-injection', 'dhcp.domain', 'lan\nserver=203.0.113.66', { yamlOnly: false });
  setCase('dnsconf', 'domain-upper', 'dhcp.domain', 'Lan', { yamlOnly: true });
  setCase('dnsconf', 'domain-empty-label', 'dhcp.domain', 'a..lan', { yamlOnly: true });
  setCase('dnsconf', 'domain-long', 'dhcp.domain', `${'a'.repeat(60)}.`.repeat(5) + 'lan', { yamlOnly: true });
  setCase('dnsconf', 'domain-comma', 'dhcp.domain', 'lan,evil', { yamlOnly: true });
  for (const [n, v] of [['broadcast', 'ff:ff:ff:ff:ff:ff'], ['multicast', '01:00:5e:00:00:01'], ['zero', '00:00:00:00:00:00'], ['newline', 'de:ad:be:ef:32:10\n'], ['short', 'de:ad:be:ef:32']] as const) {
    setCase('mac', n, 'vms[0].mac', v, { yamlOnly: true, schema: true });
  }
  setCase('disk', 'format', 'vms[1].disk[0].format', 'vmdk', { yamlOnly: true });
  setCase('disk', 'cache', 'vms[1].disk[0].cache', 'evil,file=/etc/shadow', { yamlOnly: true });
  setCase('disk', 'seventeen', 'vms[1].disk', Array.from({ length: 17 }, (_, i) => `/srv/vm/d${i}.img`), { yamlOnly: true });

  // --- duplicate keys (JSON.parse keeps the last one silently)
  text('dupkey', 'top-json', 'json', 'uplink', baseJson().replace('"uplink": "eth0",', '"uplink": "eth0",\n  "uplink": "br+",'));
  text('dupkey', 'nested-json', 'json', 'bridge.name', baseJson().replace('"name": "br0",', '"name": "br0", "name": "eth0",'));
  text('dupkey', 'vm-json', 'json', 'vms[0].ipv4', baseJson().replace('"ipv4": "192.168.0.100",', '"ipv4": "192.168.0.100", "ipv4": "10.9.9.9",'));
  text('dupkey', 'escaped-json', 'json', 'uplink', baseJson().replace('"uplink": "eth0",', '"uplink": "eth0",\n  "upl\\u0069nk": "eth1",'));
  text('dupkey', 'proto-json', 'json', '__proto__', baseJson().replace('{', '{\n  "__proto__": {"a": 1},\n  "__proto__": {"b": 2},'));
  text('dupkey', 'top-yaml', 'yaml', 'uplink', `${baseYaml()}uplink: br+\n`);
  text('dupkey', 'quoted-yaml', 'yaml', 'name', `"name": other\n${baseYaml()}`);
  text('dupkey', 'number-yaml', 'yaml', 'vms[0].forwards[0].port', baseYaml().replace('- port: 1234\n', '- port: 1234\n        "port": 2\n'));

  // --- YAML tags and directives (unknown tags were ignored; 1.1 reads yes as true and 0755 as 493)
  for (const [n, t, path] of [
    ['unknown', 'uplink: !evil eth0\n', 'uplink'], ['binary', 'uplink: !!binary ZXRoMA==\n', 'uplink'], ['set', 'uplink: !!set {eth0}\n', 'uplink'],
    ['timestamp', 'uplink: !!timestamp 2001-12-14\n', 'uplink'], ['verbatim', 'uplink: !<tag:example.com,2000:app/x> eth0\n', 'uplink'],
    ['nonspecific', 'uplink: ! eth0\n', 'uplink'], ['python', 'uplink: !!python/object/apply:os.system ["id"]\n', 'uplink'],
  ] as const) {
    text('tag', n, 'yaml', path, baseYaml().replace('uplink: eth0\n', t));
  }
  text('tag', 'on-key', 'yaml', '', baseYaml().replace('uplink: eth0\n', '!evil uplink: eth0\n'));
  text('tag', 'tag-directive', 'yaml', 'uplink', `%TAG !e! tag:example.com,2000:\n---\n${baseYaml().replace('uplink: eth0\n', 'uplink: !e!x eth0\n')}`);
  text('tag', 'yaml-1.1', 'yaml', '', `%YAML 1.1\n---\n${baseYaml().replace('stp: false', 'stp: no')}`);
  text('tag', 'merge-key', 'yaml', '["<<"]', `x-defaults: &d { memoryMiB: 512 }\n${baseYaml()}`.replace('x-defaults', '<<'));

  // --- depth (the parser and composer recurse; 100k levels overflowed the stack, a few thousand crashed the process)
  text('depth', 'json-100k', 'json', '', baseJson().replace('"vms": [', `"x": ${'['.repeat(100_000)}${']'.repeat(100_000)},\n  "vms": [`));
  text('depth', 'json-33', 'json', '', baseJson().replace('"vms": [', `"x": ${'{"a":'.repeat(33)}1${'}'.repeat(33)},\n  "vms": [`));
  text('depth', 'yaml-flow-100k', 'yaml', '', `${baseYaml()}x: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
  text('depth', 'yaml-compact-300k', 'yaml', '', `${baseYaml()}x:\n${'- '.repeat(300_000)}x\n`);
  text('depth', 'yaml-block-1000', 'yaml', '', `${baseYaml()}x:\n${Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`);
  text('depth', 'yaml-block-40', 'yaml', '', `${baseYaml()}x:\n${Array.from({ length: 40 }, (_, i) => `${' '.repeat(2 * i + 2)}k:`).join('\n')} 1\n`);
  text('depth', 'yaml-seq-under-key', 'yaml', '', `${baseYaml()}x:\n${Array.from({ length: 40 }, (_, i) => `${' '.repeat(2 * i)}- k:`).join('\n')} 1\n`);
  text('depth', 'alias-cycle', 'yaml', '', `${baseYaml()}x: &a [*a]\n`);
  text('depth', 'alias-bomb', 'yaml', '', `${baseYaml()}a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`);

  // --- size (a 50 MB file ran past 4 GB of memory)
  text('size', 'yaml-1mib-plus-1', 'yaml', '', `${baseYaml()}#`.padEnd(1024 * 1024 + 1, 'x'));
  text('size', 'json-2mib', 'json', '', baseJson().replace('{', `{${' '.repeat(2 * 1024 * 1024)}`));
  text('size', 'yaml-huge-string', 'yaml', '', baseYaml().replace('uplink: eth0', `uplink: "${'a'.repeat(1024 * 1024)}"`));

  // --- encodings: not UTF-8; a BOM, CRLF and tabs around a bad field (the field is still named)
  text('encoding', 'latin1', 'yaml', '', Buffer.concat([Buffer.from(`${baseYaml()}# caf`), Buffer.from([0xe9, 0x0a])]));
  text('encoding', 'overlong-utf8', 'yaml', '', Buffer.concat([Buffer.from('uplink: eth'), Buffer.from([0xc0, 0xb0]), Buffer.from('\n')]));
  text('encoding', 'utf16', 'json', '', Buffer.from(`\ufeff${baseJson()}`, 'utf16le'));
  const bad = (y: string): string => y.replace('uplink: eth0', 'uplink: "br+"');
  text('encoding', 'bom-yaml', 'yaml', 'uplink', `\ufeff${bad(baseYaml())}`);
  text('encoding', 'bom-json', 'json', 'uplink', `\ufeff${baseJson().replace('"uplink": "eth0"', '"uplink": "br+"')}`);
  text('encoding', 'crlf-yaml', 'yaml', 'uplink', bad(baseYaml()).replace(/\n/g, '\r\n'));
  text('encoding', 'crlf-json', 'json', 'uplink', baseJson().replace('"uplink": "eth0"', '"uplink": "br+"').replace(/\n/g, '\r\n'));
  text('encoding', 'bom-crlf-yaml', 'yaml', 'dhcp.leaseTime', `\ufeff${baseYaml().replace('leaseTime: 12h', 'leaseTime: 0h')}`.replace(/\n/g, '\r\n'));
  text('encoding', 'tabs-json', 'json', 'vms[0].name', baseJson().replace(/\n {2}/g, '\n\t').replace('"name": "web"', '"name":\t"web-"'));
  text('encoding', 'tab-in-value', 'yaml', 'uplink', baseYaml().replace('uplink: eth0', 'uplink: "eth\\t0"'));
  text('encoding', 'tab-indent', 'yaml', '', baseYaml().replace('\n  name: br0', '\n\tname: br0'));

  // --- type confusion
  for (const [n, path, v, schema] of [
    ['bridge-list', 'bridge', [], true], ['bridge-string', 'bridge', 'br0', true], ['dhcp-list', 'dhcp', [1, 2], true], ['vms-map', 'vms', { web: {} }, true],
    ['vm-list', 'vms[0]', ['web'], true], ['uplink-number', 'uplink', 5, true], ['uplink-bool', 'uplink', true, true], ['uplink-list', 'uplink', ['eth0'], true],
    ['name-number', 'bridge.name', 0, true], ['memory-text', 'vms[0].memoryMiB', '512', true], ['memory-huge', 'vms[0].memoryMiB', 1e308, true],
    ['memory-negative', 'vms[0].memoryMiB', -512, true], ['cpus-fraction', 'vms[0].cpus', 1.5, true], ['cpus-nan-text', 'vms[0].cpus', 'NaN', true],
    ['port-big', 'vms[0].forwards[0].port', 99999999999999999999, true], ['port-negative', 'vms[0].forwards[0].port', -80, true],
    ['port-text', 'vms[0].forwards[0].port', '80', true], ['port-float', 'vms[0].forwards[0].port', 80.5, true], ['port-triple', 'vms[0].forwards[0].port', [1, 2, 3], true],
    ['port-object', 'vms[0].forwards[0].port', { from: 1 }, true], ['toport-infinity-text', 'vms[0].forwards[0].toPort', 'Infinity', true],
    ['stp-text', 'bridge.stp', 'yes', true], ['autostart-number', 'vms[0].autostart', 1, true], ['range-string', 'dhcp.range', '192.168.0.100-150', true],
    ['range-one', 'dhcp.range', ['192.168.0.100'], true], ['mode-number', 'ipv6.mode', 6, true], ['accel-null-text', 'vms[0].accel', 'null', true],
    ['forwards-map', 'vms[0].forwards', { port: 80 }, true], ['disk-number', 'vms[1].disk', 42, true], ['uplink-null', 'uplink', null, true],
  ] as const) {
    setCase('type', n, path, v, { schema, yamlOnly: !['bridge-list', 'uplink-number', 'memory-text', 'port-big', 'vms-map'].includes(n) });
  }
  text('type', 'nan-yaml', 'yaml', 'vms[1].memoryMiB', baseYaml().replace('memoryMiB: 512', 'memoryMiB: .nan'));
  text('type', 'inf-yaml', 'yaml', 'vms[0].forwards[0].port', baseYaml().replace('port: 1234', 'port: .inf'));
  text('type', 'hex-huge-yaml', 'yaml', 'vms[1].memoryMiB', baseYaml().replace('memoryMiB: 512', 'memoryMiB: 0xffffffffffffffffff'));
  text('type', 'top-list', 'yaml', '', '- uplink: eth0\n');
  text('type', 'top-scalar', 'json', '', '"uplink"');
  text('type', 'empty-file', 'yaml', '', '');

  // --- prototype keys (must be plain unknown keys: nothing polluted, nothing skipped)
  for (const [n, where, key] of [['proto-top', '', '__proto__'], ['constructor-top', '', 'constructor'], ['prototype-top', '', 'prototype'], ['proto-vm', 'vms[0]', '__proto__'], ['constructor-bridge', 'bridge', 'constructor'], ['proto-dhcp', 'dhcp', '__proto__']] as const) {
    const path = where === '' ? key : `${where}.${key}`;
    const h = baseHost();
    const target = where === '' ? h : where === 'vms[0]' ? h.vms[0] : h[where];
    Object.defineProperty(target, key, { value: { polluted: true, toString: 'x' }, enumerable: true, configurable: true, writable: true });
    add({ name: `proto-${n}`, cls: 'proto', format: 'json', bytes: Buffer.from(JSON.stringify(h, null, 2)), path, data: h, schema: true });
    add({ name: `proto-${n}-yaml`, cls: 'proto', format: 'yaml', bytes: Buffer.from(stringify(h)), path, data: h, schema: true });
  }

  // --- look-alikes and invisible characters
  data('lookalike', 'key-cyrillic', '["upl\\u0456nk"]', (h) => {
    h['uplіnk'] = h.uplink;
    delete h.uplink;
  });
  data('lookalike', 'key-zero-width', 'bridge["name\\u200b"]', (h) => {
    h.bridge['name\u200b'] = 'br1';
  }, { yamlOnly: true });
  data('lookalike', 'key-fullwidth', 'vms[0]["\\uff4eame"]', (h) => {
    h.vms[0]['ｎame'] = 'x';
  }, { yamlOnly: true });
  setCase('lookalike', 'bridge-fullwidth-digit', 'bridge.name', 'br０', { yamlOnly: true });
  setCase('lookalike', 'vm-cyrillic', 'vms[1].name', 'mаil', { yamlOnly: true });
  setCase('lookalike', 'mode-cyrillic', 'ipv6.mode', 'rоuted', { yamlOnly: true });
  setCase('lookalike', 'protocol-upper', 'vms[0].forwards[0].protocol', 'TCP', { yamlOnly: true });

  // --- very long strings
  setCase('long', 'uplink-100k', 'uplink', 'x'.repeat(100_000), { yamlOnly: true });
  data('long', 'key-100k', `vms[0]["${'k'.repeat(64)}..."]`, (h) => {
    h.vms[0]['k'.repeat(100_000)] = 1;
  }, { yamlOnly: true });
  setCase('long', 'domain-300', 'dhcp.domain', 'a'.repeat(300), { yamlOnly: true });
  setCase('long', 'mac-long', 'vms[0].mac', 'de:'.repeat(10_000), { yamlOnly: true });
  setCase('long', 'name-long', 'name', 'n'.repeat(50_000), { yamlOnly: true });

  // --- forwards (overlaps, bounds, the check that was quadratic)
  for (const [n, path, fw, schema] of [
    ['overlap', 'vms[1].forwards[0].port', [[{ port: 80 }], [{ port: 80 }]], false],
    ['overlap-range', 'vms[1].forwards[0].port', [[{ port: [8000, 9000] }], [{ port: [8500, 8600] }]], false],
    ['reversed', 'vms[0].forwards[0].port', [[{ port: [90, 80] }], []], false],
    ['zero', 'vms[0].forwards[0].port', [[{ port: 0 }], []], true],
    ['65536', 'vms[0].forwards[0].port', [[{ port: 65536 }], []], true],
    ['toport-overflow', 'vms[0].forwards[0].toPort', [[{ port: [100, 200], toPort: 65500 }], []], false],
    ['protocol-sctp', 'vms[0].forwards[0].protocol', [[{ port: 80, protocol: 'sctp' }], []], true],
    ['unknown-key', 'vms[0].forwards[0].dport', [[{ port: 80, dport: 81 }], []], true],
  ] as const) {
    data('forward', n, path, (h) => {
      h.vms[0].forwards = fw[0];
      h.vms[1].forwards = fw[1];
    }, { schema, yamlOnly: n !== 'overlap' });
  }
  data('forward', 'many-then-overlap', 'vms[1].forwards[0].port', (h) => {
    h.vms[0].forwards = Array.from({ length: 4000 }, (_, i) => ({ port: 10_000 + i }));
    h.vms[1].forwards = [{ port: [9000, 10_000] }];
  }, { schema: false, jsonOnly: true });
  data('forward', 'too-many', 'vms[0].forwards', (h) => {
    h.vms[0].forwards = Array.from({ length: 4097 }, (_, i) => ({ port: 1 + i, protocol: 'udp' }));
  }, { jsonOnly: true });

  // --- counts
  data('count', 'vms-1001', 'vms', (h) => {
    h.vms = Array.from({ length: 1001 }, (_, i) => ({ name: `v${i}`, ipv4: `192.168.${Math.floor(i / 250) + 1}.${(i % 250) + 1}`, kernel: '/boot/vmlinuz' }));
  }, { jsonOnly: true });

  // --- unknown keys and misplaced sections
  for (const [n, path, edit] of [
    ['peer-up', 'bridge.veth.up', (h: Json) => (h.bridge.veth.up = true)],
    ['vm-typo', 'vms[0].memmory', (h: Json) => (h.vms[0].memmory = 512)],
    ['top-typo', 'vm', (h: Json) => (h.vm = [])],
    ['proxy-typo', 'ipv6.proxy.maxConn', (h: Json) => (h.ipv6.proxy.maxConn = 5)],
    ['disk-typo', 'vms[1].disk[0].fromat', (h: Json) => (h.vms[1].disk[0].fromat = 'raw')],
  ] as const) {
    data('unknown', n, path, edit, { yamlOnly: n !== 'peer-up' });
  }
  return out;
}

/** Writes every case to `dir` (one file each). */
export function writeCases(dir: string, cases = hostileCases()): Array<HostileCase & { file: string }> {
  mkdirSync(dir, { recursive: true });
  return cases.map((c) => {
    const file = join(dir, `${c.name}.${c.format}`);
    writeFileSync(file, c.bytes);
    return { ...c, file };
  });
}

if (process.argv[1] === import.meta.filename && process.argv[2]) {
  const written = writeCases(process.argv[2]);
  console.log(`${written.length} hostile host files in ${process.argv[2]}`);
}
