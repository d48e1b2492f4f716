/**
 * Which entries of the host an rtnetlink notification concerns: the index of the desired entries
 * by the kernel's keys (link names, `dev|cidr` of addresses, route destinations, `dev|to` of proxy
 * neighbours), and the mapping of one event to the entry ids to repair. Pure. A deletion (or, for
 * links, any change: a TAP that lost its bridge, a bridge set down) of something the host file
 * wants names its entry; the engine's inspection then decides whether anything is to be done, so
 * a notification of the service's own change costs an inspection and nothing else.
 * @module
 */
import type { RtnlEvent } from '@vmhost/net';
import type { Entry } from '../engine/entries.js';

/** The desired entries by the keys notifications carry. */
export interface DriftIndex {
  links: Map<string, string>;
  addresses: Map<string, string>;
  routes: Map<string, string>;
  proxyNeighbors: Map<string, string>;
  /** The uplink (not the host's: its appearance retries a failed apply). */
  uplink: string;
  /** The bridge, whose neighbour table `ipv6.learn` reads. */
  bridge: string;
}

/** The index of `entries` (desiredState's, in the order apply makes them). */
export function driftIndex(entries: readonly Entry[], uplink: string, bridge: string): DriftIndex {
  const ix: DriftIndex = { links: new Map(), addresses: new Map(), routes: new Map(), proxyNeighbors: new Map(), uplink, bridge };
  for (const e of entries) {
    switch (e.kind) {
      case 'link':
        ix.links.set(e.data.name, e.id);
        if (e.data.kind === 'veth') ix.links.set(e.data.peer, e.id);
        break;
      case 'address':
        ix.addresses.set(`${e.data.dev}|${e.data.cidr}`, e.id);
        break;
      case 'route':
        ix.routes.set(e.data.to, e.id);
        break;
      case 'proxyNeighbor':
        ix.proxyNeighbors.set(`${e.data.dev}|${e.data.to}`, e.id);
        break;
      default:
        break;
    }
  }
  return ix;
}

/** What one notification asks for: entry ids to repair, with the words of what happened. */
export interface DriftHit {
  ids: string[];
  what: string;
}

/**
 * The entries `ev` concerns (undefined: none of the host's). A link of the host's: any change
 * (deleted, renamed away, down, off its bridge); an address, route or proxy neighbour: deleted; a
 * route to one of the host's destinations through another device: replaced. An overrun is not
 * mapped here (the caller re-plans everything).
 */
export function driftOf(ix: DriftIndex, ev: RtnlEvent): DriftHit | undefined {
  switch (ev.type) {
    case 'link': {
      const id = ix.links.get(ev.link.name);
      if (id === undefined) return undefined;
      return { ids: [id], what: `link ${ev.link.name} ${ev.action === 'del' ? 'deleted' : 'changed'}` };
    }
    case 'address': {
      if (ev.action !== 'del' || ev.address.link === null) return undefined;
      const id = ix.addresses.get(`${ev.address.link}|${ev.address.cidr}`);
      return id === undefined ? undefined : { ids: [id], what: `address ${ev.address.cidr} on ${ev.address.link} deleted` };
    }
    case 'route': {
      const id = ix.routes.get(ev.route.to);
      if (id === undefined) return undefined;
      if (ev.action === 'del') return { ids: [id], what: `route ${ev.route.to} deleted` };
      return ev.route.dev !== ix.bridge ? { ids: [id], what: `route ${ev.route.to} replaced (dev ${ev.route.dev ?? '?'})` } : undefined;
    }
    case 'neighbor': {
      const n = ev.neighbor;
      if (!n.proxy || ev.action !== 'del' || n.dev === null) return undefined;
      const id = ix.proxyNeighbors.get(`${n.dev}|${n.to}`);
      return id === undefined ? undefined : { ids: [id], what: `proxy neighbour ${n.to} on ${n.dev} deleted` };
    }
    default:
      return undefined;
  }
}
