// Completes package-lock.json with the platform-specific optional packages (biome's binaries for
// other systems) that `npm install` leaves out when the registry it uses serves only this
// platform's. Without them `npm ci` refuses the lock as out of sync. Run after `npm install`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const path = join(import.meta.dirname, '..', 'package-lock.json');
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;
const token = (name, options) => options.find((o) => name.split(/[-/]/).includes(o));
let added = 0;
for (const [key, entry] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const depKey = `node_modules/${dep}`;
    if (packages[depKey]) continue;
    const os = token(dep, ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'sunos', 'win32']);
    const cpu = token(dep, ['arm', 'arm64', 'ia32', 'x64', 'ppc64', 's390x']);
    if (!os || !cpu) throw new Error(`${dep} (optional for ${key}) is missing and names no platform`);
    packages[depKey] = {
      version,
      cpu: [cpu],
      ...(entry.dev ? { dev: true } : {}),
      license: entry.license,
      optional: true,
      os: [os],
      ...(dep.endsWith('-musl') ? { libc: ['musl'] } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lock: added ${added} platform package entries`);
