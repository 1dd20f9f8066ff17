/**
 * IPv4/IPv6 CIDR parsing and membership for the `cidr` modifier. Addresses are
 * compared as 16-bit words so no BigInt is needed on the hot path.
 */

/** IPv4 as 2 words, IPv6 as 8 words; null when the text is not an address. */
export function parseIp(text: string): { family: 4 | 6; words: number[] } | null {
  if (text.includes(':')) {
    const words = parseIpv6(text);
    return words ? { family: 6, words } : null;
  }
  const v4 = parseIpv4(text);
  return v4 ? { family: 4, words: v4 } : null;
}

function parseIpv4(text: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return null;
  return [((b[0] as number) << 8) | (b[1] as number), ((b[2] as number) << 8) | (b[3] as number)];
}

function parseIpv6(input: string): number[] | null {
  let text = input;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // Embedded IPv4 (`::ffff:1.2.3.4`): rewrite it as two hex groups.
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (!v4) return null;
    text = `${text.slice(0, lastColon + 1)}${(v4[0] as number).toString(16)}:${(v4[1] as number).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  if (!head || !rest) return null;
  const given = head.length + rest.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  return [...head, ...new Array<number>(8 - given).fill(0), ...rest];
}

export interface Network {
  family: 4 | 6;
  words: number[];
  prefix: number;
}

/** Strict: `192.168.1.1/24` is an error because host bits are set (pySigma). */
export function parseCidr(text: string): Network | string {
  const slash = text.indexOf('/');
  const addr = parseIp(slash >= 0 ? text.slice(0, slash) : text);
  if (!addr) return `'${text}' is not an IP network`;
  const bits = addr.family === 4 ? 32 : 128;
  const prefix = slash >= 0 ? Number(text.slice(slash + 1)) : bits;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1))))
    return `'${text}' has an invalid prefix length`;
  const net: Network = { family: addr.family, words: addr.words, prefix };
  if (!sameNetwork(net, addr.words, true)) return `'${text}' has host bits set`;
  return net;
}

/** Membership test; with `hostBitsZero` it instead checks that host bits are zero. */
function sameNetwork(net: Network, words: number[], hostBitsZero = false): boolean {
  let remaining = net.prefix;
  for (let i = 0; i < net.words.length; i++) {
    const take = Math.max(0, Math.min(16, remaining));
    remaining -= 16;
    const mask = take === 0 ? 0 : (0xffff << (16 - take)) & 0xffff;
    const w = words[i] as number;
    if (hostBitsZero) {
      if ((w & ~mask & 0xffff) !== 0) return false;
    } else if ((w & mask) !== ((net.words[i] as number) & mask)) return false;
  }
  return true;
}

export function inNetwork(net: Network, text: string): boolean {
  const ip = parseIp(text);
  if (!ip) return false;
  if (ip.family === net.family) return sameNetwork(net, ip.words);
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address for v4 networks.
  if (net.family === 4 && ip.words.slice(0, 5).every((w) => w === 0) && ip.words[5] === 0xffff) return sameNetwork(net, ip.words.slice(6));
  return false;
}
