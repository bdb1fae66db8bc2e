// npm start: the whole system on this machine, no account, nothing else to
// install. The worker on workerd with its page and API at 127.0.0.1:8787, a
// demo room, and a demo agent on the simulated device driving that room.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startLocalServer } from '../tests/support/local-server.ts';
import { RoomAgent } from '../agent/room-agent.ts';
import { DeviceTransport } from '../agent/transport-driver.ts';
import { SimDeviceClock } from '../agent/sources/sim.ts';
import { watchWeb } from './build-web.ts';

const ROOT = resolve(import.meta.dirname, '..');
const PORT = Number(process.env.PORT ?? 8787);

/** `.dev.vars` holds local secrets; an ADMIN_TOKEN is made up once if missing. */
function ensureAdminToken(): { token: string; created: boolean } {
  const file = join(ROOT, '.dev.vars');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const found = /^ADMIN_TOKEN\s*=\s*"?([^"\n]+)"?/m.exec(text);
  if (found) return { token: found[1], created: false };
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${text}${text && !text.endsWith('\n') ? '\n' : ''}ADMIN_TOKEN="${token}"\n`, { mode: 0o600 });
  return { token, created: true };
}

const admin = ensureAdminToken();
// The page rebuilds as its sources change; the worker reloads on its own.
const web = await watchWeb({ quiet: true });
const server = await startLocalServer({
  port: PORT,
  persistTo: join(ROOT, '.wrangler/state'),
  // The live tree: edits rebuild and reload, as a developer expects.
  snapshot: false,
  vars: { ADMIN_TOKEN: admin.token },
  startTimeoutMs: 90_000,
});

const res = await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"bpm":120}' });
if (!res.ok) {
  console.error(`could not create the demo room: HTTP ${res.status} ${await res.text()}`);
  await server.stop();
  process.exit(1);
}
const room = (await res.json()) as { code: string; control_token: string; page_url: string };
const driver = new DeviceTransport(new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: 50, jitterMs: 1 }));
const agent = new RoomAgent({
  url: server.url,
  code: room.code,
  token: room.control_token,
  driver,
  log: (line) => console.log(`agent  ${line}`),
});
await agent.start();
await fetch(`${server.url}/api/v1/rooms/${room.code}/transport/play`, { method: 'POST', headers: { authorization: `Bearer ${room.control_token}` } });

const line = '─'.repeat(64);
console.log(`
${line}
 roomtone is running on ${server.url}

 demo room      ${room.code}
 page           ${room.page_url}
 control link   ${room.page_url}#control=${room.control_token}
 control token  ${room.control_token}
 admin token    ${admin.token}${admin.created ? '   (new; saved in .dev.vars)' : '   (from .dev.vars)'}

 A demo agent drives the room from a simulated audio device (+50 ppm).
 Try:  npx roomtone watch ${room.code} --url ${server.url}
       curl -X POST -H 'Authorization: Bearer ${room.control_token}' ${server.url}/api/v1/rooms/${room.code}/transport/pause
 Ctrl-C stops everything.
${line}
`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await agent.stop();
  await web.stop();
  await server.stop();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
server.process.once('exit', (code) => {
  if (!stopping) {
    console.error(`the local worker exited (code ${code}):\n${server.log().slice(-3000)}`);
    process.exit(1);
  }
});
