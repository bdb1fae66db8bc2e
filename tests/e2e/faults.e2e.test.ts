// The local runtime killed (SIGKILL) in the middle of a session and started
// again on its persisted state: a room driven by an agent on a simulated
// device, a viewer, a job with a watcher, and the catalog. Everything the
// server had accepted survives with its sequence numbers, and every client
// finds its way back by itself and ends where a run without the fault ends:
// the viewer on the agent's clock, the watcher with each event exactly once.
import { describe, expect, it } from 'vitest';
import { startLocalServer } from '../support/local-server.ts';
import { until } from '../support/until.ts';
import { RoomClient } from '../../src/client/room-client.ts';
import { localNow } from '../../src/client/clock-sync.ts';
import { JobWatcher } from '../../src/client/job-watcher.ts';
import { RoomAgent } from '../../agent/room-agent.ts';
import { DeviceTransport } from '../../agent/transport-driver.ts';
import { SimDeviceClock } from '../../agent/sources/sim.ts';
import { FINGERPRINT_VERSION, type JobEvent, type JobStatusWithEvents, type Track } from '../../src/protocol/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
const FAST = { minDelayMs: 100, maxDelayMs: 500 };

async function json<T>(res: Promise<Response>): Promise<T> {
  const r = await res;
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

describe('faults', () => {
  it('keeps rooms, jobs and the catalog across a killed runtime, and the agent, the viewer and the job watcher come back by themselves', async () => {
    const first = await startLocalServer();
    const url = first.url;
    let server = first;
    const sim = new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: 100, jitterMs: 1, seed: 3 });
    const driver = new DeviceTransport(sim);
    let agent: RoomAgent | null = null;
    let viewer: RoomClient | null = null;
    let watcher: JobWatcher | null = null;
    try {
      // The session: a room with its agent and a viewer, a job half done, a track in the catalog.
      const room = await json<{ code: string; control_token: string }>(fetch(`${url}/api/v1/rooms`, { method: 'POST' }));
      const control = (op: string, body?: unknown) =>
        fetch(`${url}/api/v1/rooms/${room.code}/transport/${op}`, { method: 'POST', headers: { authorization: `Bearer ${room.control_token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      agent = new RoomAgent({ url, code: room.code, token: room.control_token, driver, backoff: FAST });
      await agent.start();
      viewer = new RoomClient({ url, code: room.code, backoff: FAST });
      await viewer.connect();
      expect((await control('seek', { seconds: 30 })).status).toBe(200);
      expect((await control('play')).status).toBe(200);
      await until(() => viewer!.position()?.playing === true, 5000, 'playing');

      const job = await json<{ job_id: string; publish_token: string; status_url: string; stream_url: string }>(
        fetch(`${url}/api/v1/jobs`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ kind: 'faults', heartbeat_ms: 1000 }) }),
      );
      const publish = (body: unknown) =>
        json<{ seq: number }>(fetch(`${url}/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }));
      const delivered: JobEvent[] = [];
      watcher = new JobWatcher({ statusUrl: job.status_url, backoff: FAST, socketRetryMs: 1000, pollIntervalMs: 500, heartbeatMs: 1000 });
      watcher.on('event', (e) => delivered.push(e));
      watcher.start();
      for (let i = 1; i <= 3; i++) expect((await publish({ type: 'progress', progress: i * 10, stage: 'before' })).seq).toBe(i);
      await until(() => delivered.length === 3, 10_000, 'three events before the fault');

      const track = await json<{ track: Track }>(
        fetch(`${url}/api/v1/catalog/tracks?wait=1`, {
          method: 'POST',
          headers: ADMIN,
          body: JSON.stringify({ title: 'Before the fault', duration_s: 5, fingerprint_version: FINGERPRINT_VERSION, hashes: [11, 22, 33, 44], times: [0, 5, 10, 15] }),
        }),
      );
      expect(track.track.status).toBe('ready');
      const versionBefore = (await json<{ version: number }>(fetch(`${url}/api/v1/rooms/${room.code}/transport`))).version;

      // The fault: no clean shutdown, nothing flushed on the way out.
      await server.crash();
      expect(await fetch(`${url}/api/v1/health`).then(() => 'answered', () => 'down')).toBe('down');
      await sleep(1500);
      server = await startLocalServer({ port: first.port, persistTo: first.persistTo });

      // Persisted state: the room plays from where it was, the job keeps its events, the track is there.
      const t = await json<{ playing: boolean; version: number; time_seconds: number }>(fetch(`${url}/api/v1/rooms/${room.code}/transport`));
      expect(t.playing).toBe(true);
      expect(t.version).toBeGreaterThanOrEqual(versionBefore);
      expect(t.time_seconds).toBeGreaterThan(30);
      const status = await json<JobStatusWithEvents>(fetch(`${url}/api/v1/jobs/${job.job_id}?after=0`));
      expect(status.events!.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(status.state).toBe('running');
      expect((await json<Track>(fetch(`${url}/api/v1/catalog/tracks/${track.track.track_id}`))).status).toBe('ready');

      // Every client reconnects without being told to.
      await until(() => viewer!.state === 'open' && agent!.client.state === 'open', 20_000, 'the viewer and the agent to reconnect');
      await until(() => viewer!.agent.connected, 10_000, 'the viewer to see the agent again');

      // Sequences go on from where they were: the next event is 4, the next track the next id.
      expect((await publish({ type: 'progress', progress: 40, stage: 'after' })).seq).toBe(4);
      expect((await publish({ type: 'completed', summary: { ok: true } })).seq).toBe(5);
      const terminal = await watcher.done;
      expect(terminal.seq).toBe(5);
      expect(delivered.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      const next = await json<{ track: Track }>(
        fetch(`${url}/api/v1/catalog/tracks?wait=1`, {
          method: 'POST',
          headers: ADMIN,
          body: JSON.stringify({ title: 'After the fault', duration_s: 5, fingerprint_version: FINGERPRINT_VERSION, hashes: [55, 66], times: [0, 5] }),
        }),
      );
      expect(next.track.track_id).toBe(track.track.track_id + 1);

      // Control still reaches the agent, and the viewer ends on the device's clock.
      expect((await control('seek', { seconds: 90 })).status).toBe(200);
      await until(() => Math.abs(viewer!.position()!.seconds - 90) < 5, 5000, 'the viewer to follow the seek');
      await sleep(2000);
      const errs: number[] = [];
      for (let i = 0; i < 20; i++) {
        const local = localNow();
        const seen = viewer.position(local)!.sample_pos;
        const truth = driver.timelineFromDevice(sim.truth(local));
        errs.push(Math.abs(seen - truth) / 48);
        await sleep(50);
      }
      errs.sort((a, b) => a - b);
      // Same machine, same clock: the viewer's playhead is on the device's within a few ms, as without the fault.
      expect(errs[Math.floor(errs.length / 2)]).toBeLessThan(5);
    } finally {
      watcher?.stop();
      viewer?.close();
      await agent?.stop();
      await server.stop();
    }
  }, 120_000);
});
