// chdb lists optional native packages for every platform, but only the Linux x64 one is served by
// the registry this project installs from. `npm install` then leaves the others out of
// package-lock.json, and `npm ci` refuses a lock file that misses them. This adds lock entries for
// the missing platforms (os/cpu-guarded, so npm never fetches them on Linux x64).
//   node scripts/lock-chdb-platforms.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const chdb = lock.packages['node_modules/chdb'];
const platforms = {
  'lib-darwin-arm64': { cpu: ['arm64'], os: ['darwin'] },
  'lib-darwin-x64': { cpu: ['x64'], os: ['darwin'] },
  'lib-linux-arm64-gnu': { cpu: ['arm64'], os: ['linux'], libc: ['glibc'] },
  'lib-linux-x64-gnu': { cpu: ['x64'], os: ['linux'], libc: ['glibc'] },
};
let added = 0;
for (const [name, version] of Object.entries(chdb.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const platform = platforms[name.replace('@chdb/', '')];
  if (!platform) throw new Error(`unknown chdb platform package ${name}: add its os/cpu here`);
  lock.packages[key] = { version, ...platform, license: 'Apache-2.0', optional: true };
  added++;
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(added ? `added ${added} chdb platform entries to package-lock.json` : 'package-lock.json already lists every chdb platform');
