// The studio agent: attaches a TransportDriver to a room. It estimates its
// offset to server time with the same RoomClient as every browser, reports the
// driver's audio clock 10–20 times a second while playing, applies commands
// the room forwards from controllers, and reports every discontinuity.

import { RoomClient, RoomCommandError, type ConnectionState } from '../src/client/room-client.ts';
import type { BackoffOptions } from '../src/client/backoff.ts';
import type { ControlCommand, RoomServerMessage } from '../src/protocol/index.ts';
import type { DriverCommand, DriverState, TransportDriver } from './transport-driver.ts';

export interface RoomAgentOptions {
  url: string;
  code: string;
  token: string;
  driver: TransportDriver;
  /** Clock reports per second while playing (10–20 is plenty: the room fits a line). */
  clockHz?: number;
  backoff?: Partial<BackoffOptions>;
  log?: (line: string) => void;
}

type AgentCause = 'attach' | 'local' | 'end' | ControlCommand['op'];

export class RoomAgent {
  readonly client: RoomClient;
  readonly driver: TransportDriver;
  private readonly clockHz: number;
  private readonly log: (line: string) => void;
  private clockTimer: ReturnType<typeof setInterval> | null = null;
  private attachedOnce = false;
  reportsSent = 0;

  constructor(opts: RoomAgentOptions) {
    this.driver = opts.driver;
    this.clockHz = opts.clockHz ?? 20;
    if (!(this.clockHz >= 1 && this.clockHz <= 50)) throw new RangeError('clock reports must be 1–50 per second');
    this.log = opts.log ?? (() => {});
    this.client = new RoomClient({ url: opts.url, code: opts.code, token: opts.token, role: 'agent', backoff: opts.backoff });
    this.client.on('message', (m) => this.onRoomMessage(m));
    this.client.on('state', (s) => this.onConnection(s));
    this.driver.onChange((s, cause) => this.report(s, cause));
  }

  /** Starts the device, joins the room as its agent, and reports the current state. */
  async start(): Promise<void> {
    await this.driver.start();
    await this.client.connect();
    this.attachedOnce = true;
    const at = this.driver.followsRoomOnStart ? await this.adoptRoomLine() : undefined;
    this.report(this.driver.state(at), 'attach');
    this.log(`attached to room ${this.client.code} (clock offset ${this.client.sync.offsetMs.toFixed(2)} ms ±${this.client.sync.uncertaintyMs.toFixed(2)})`);
    this.clockTimer = setInterval(() => this.sendClock(), 1000 / this.clockHz);
  }

  async stop(): Promise<void> {
    if (this.clockTimer) clearInterval(this.clockTimer);
    this.clockTimer = null;
    this.client.close();
    await this.driver.stop();
  }

  /** Puts a stateless driver where the room's published line is, so attaching moves nothing. */
  private async adoptRoomLine(): Promise<number | undefined> {
    const a = this.client.anchor;
    if (!a) return undefined;
    if (a.bpm !== this.driver.state().bpm || a.beats_per_bar !== this.driver.state().beats_per_bar) {
      await this.driver.apply({ op: 'tempo', bpm: a.bpm, beats_per_bar: a.beats_per_bar });
    }
    if (a.status === 'stopped' && a.sample === 0) return undefined;
    // Start a little ahead so the device has a buffer reference on both sides.
    const localStart = performance.timeOrigin + performance.now() + 20;
    const p = this.client.position(localStart)!;
    await this.driver.apply({ op: 'seek', samples: p.sample_pos });
    if (a.status === 'playing') await this.driver.apply({ op: 'play', atLocalMs: localStart });
    if (a.status === 'paused') {
      await this.driver.apply({ op: 'play' });
      await this.driver.apply({ op: 'pause' });
      await this.driver.apply({ op: 'seek', samples: p.sample_pos });
    }
    this.log(`took the room's position ${p.seconds.toFixed(3)} s (${a.status})`);
    // Report the state at the start instant: that is the point on the room's line.
    return localStart;
  }

  private onConnection(s: ConnectionState): void {
    if (s === 'reconnecting') this.log('connection lost; reconnecting (viewers keep extrapolating)');
    // A reconnect keeps its clock estimate, so the state it reports lines up
    // with what viewers extrapolated: the room publishes nothing new.
    if (s === 'open' && this.attachedOnce) {
      this.log('reattached');
      this.report(this.driver.state(), 'attach');
    }
  }

  private sendClock(): void {
    if (this.client.state !== 'open' || !this.client.sync.synced) return;
    const c = this.driver.clock();
    if (!c) return;
    if (this.client.send({ type: 'clock', sample: c.sample, server_ms: this.client.serverNow(c.localMs) })) this.reportsSent++;
  }

  private report(s: DriverState, cause: AgentCause, id?: string, error?: string): void {
    const msg: Record<string, unknown> = {
      type: 'agent_state',
      cause,
      status: s.status,
      sample: Math.max(0, s.sample),
      server_ms: this.client.serverNow(s.localMs),
      bpm: s.bpm,
      beats_per_bar: s.beats_per_bar,
    };
    if (id) msg.id = id;
    if (error) msg.error = error;
    this.client.send(msg);
  }

  private async onRoomMessage(m: RoomServerMessage): Promise<void> {
    if (m.type === 'error' && m.code === 'conflict') this.log(`room: ${m.message}`);
    if (m.type !== 'control') return;
    const cmd = this.toDriver(m.command);
    if (typeof cmd === 'string') {
      this.report(this.driver.state(), m.command.op, m.id, cmd);
      return;
    }
    this.log(`control: ${m.command.op}${'at' in m.command && m.command.at ? ` at server ${Math.round(Number(m.command.at))}` : ''}`);
    const state = await this.driver.apply(cmd);
    this.report(state, m.command.op, m.id);
  }

  /** Room commands arrive in absolute terms; the driver wants local time. */
  private toDriver(c: ControlCommand): DriverCommand | string {
    switch (c.op) {
      case 'play':
        return typeof c.at === 'number' ? { op: 'play', atLocalMs: c.at - this.client.sync.offsetMs } : { op: 'play' };
      case 'seek':
        if (c.samples === undefined) return 'seek must be given in samples';
        return { op: 'seek', samples: c.samples };
      case 'tempo':
        return { op: 'tempo', bpm: c.bpm, beats_per_bar: c.beats_per_bar };
      default:
        return { op: c.op };
    }
  }
}

export { RoomCommandError };
