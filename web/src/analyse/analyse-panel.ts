// The room page's Analyse panel: this device's microphone, captured in an
// AudioWorklet, streamed as binary f32 PCM to one of the room's analysis
// streams; the server's pitch, dynamics and onsets come back and are shown as
// a tuner, a level meter and a scrolling timeline on the room's beat grid.

import type { RoomClient } from '../../../src/client/room-client.ts';
import { localNow } from '../../../src/client/clock-sync.ts';
import { ANALYSIS_CLOSE, ANALYSIS_SILENT_MS, type AnalysisResult, type AnalysisServerMessage } from '../../../src/protocol/analysis-messages.ts';
import { Mic, MicError } from '../audio/mic.ts';
import { PcmSocket, wsUrl, type PcmSocketState } from '../audio/pcm-socket.ts';
import { byId, describeError, setText, show } from '../dom.ts';
import { randomId } from '../format.ts';
import { Timeline } from './timeline.ts';
import { TunerView } from './tuner-view.ts';

/** Samples per frame: about 43 ms at 48 kHz, a live feel without a flood of messages. */
const FRAME_SIZE = 2048;

export interface AnalyseStats {
  /** The room's analysis stream this page feeds (others can watch it by name). */
  stream: string | null;
  results: number;
  onsets: number;
  lastNote: string | null;
  streamStartServerMs: number | null;
}

/** Receivers check what they use: anything that is not a well-formed result is ignored. */
function isResult(m: AnalysisServerMessage): m is AnalysisResult {
  const r = m as Partial<AnalysisResult>;
  return (
    r.type === 'analysis' && typeof r.t === 'number' && Array.isArray(r.onsets) && r.onsets.every((x) => typeof x === 'number') &&
    typeof r.dynamics === 'object' && r.dynamics !== null && typeof r.dynamics.rms_db === 'number' &&
    (r.pitch === null || (typeof r.pitch === 'object' && typeof r.pitch?.note === 'string' && typeof r.pitch.hz === 'number' && typeof r.pitch.cents === 'number'))
  );
}

export class AnalysePanel {
  readonly stats: AnalyseStats = { stream: null, results: 0, onsets: 0, lastNote: null, streamStartServerMs: null };
  /** The page's current room client (it is replaced when a refused control link falls back to viewing). */
  private readonly current: () => RoomClient;
  private readonly button = byId<HTMLButtonElement>('analyse-start');
  private readonly status = byId('analyse-status');
  private readonly error = byId('analyse-error');
  private readonly level = byId<HTMLMeterElement>('analyse-level');
  private readonly db = byId('analyse-db');
  private readonly velocity = byId('analyse-velocity');
  private readonly onsetCount = byId('onset-count');
  private readonly tuner = new TunerView();
  private readonly timeline = new Timeline(byId<HTMLCanvasElement>('onset-timeline'));
  private mic: Mic | null = null;
  private socket: PcmSocket | null = null;
  private raf = 0;
  /** Server time of the current connection's first sample. */
  private t0ServerMs: number | null = null;
  /** Stream time (s) of that sample: a stream's time runs on across reconnections. */
  private startT = 0;

  constructor(current: () => RoomClient) {
    this.current = current;
    this.button.addEventListener('click', () => void (this.mic ? this.stop() : this.start()));
    this.tuner.clear();
  }

  private get client(): RoomClient {
    return this.current();
  }

  private say(text: string): void {
    setText(this.status, text);
  }

  private showError(text: string | null): void {
    setText(this.error, text ?? '');
    show(this.error, text !== null);
  }

  async start(): Promise<void> {
    this.showError(null);
    this.button.disabled = true;
    this.say('Asking for the microphone…');
    let mic: Mic;
    try {
      mic = await Mic.open({ frameSize: FRAME_SIZE, onFrame: (f, at) => this.onFrame(f, at) });
    } catch (e) {
      this.button.disabled = false;
      this.say('');
      this.showError(e instanceof MicError ? e.message : describeError(e));
      return;
    }
    this.mic = mic;
    mic.onEnded(() => {
      this.showError('The microphone stopped (unplugged, or permission was withdrawn).');
      void this.stop();
    });
    const rate = mic.sampleRate;
    const stream = (this.stats.stream = randomId('mic'));
    this.socket = new PcmSocket({
      // role=source: the server keeps a streaming source's socket out of hibernation (cheaper per frame).
      url: wsUrl(`/api/v1/rooms/${this.client.code}/analysis/${stream}?role=source`),
      hello: (firstSampleLocal) => {
        // Said in server time, so the server places onsets on the room's beat grid exactly.
        this.t0ServerMs = this.client.sync.synced ? this.client.serverNow(firstSampleLocal) : null;
        this.stats.streamStartServerMs = this.t0ServerMs;
        return { type: 'hello', role: 'source', sample_rate: rate, format: 'f32', ...(this.t0ServerMs ? { t0_server_ms: this.t0ServerMs } : {}) };
      },
      isReady: (m) => m.type === 'ready',
      onMessage: (m) => this.onMessage(m as unknown as AnalysisServerMessage),
      onState: (s, detail) => this.onSocketState(s, detail),
      silentMs: ANALYSIS_SILENT_MS,
      finalCodes: {
        [ANALYSIS_CLOSE.misbehaving]: 'the server refused the audio',
        [ANALYSIS_CLOSE.too_fast]: 'the audio arrived faster than real time',
      },
    });
    show(byId('analyse-live'), true);
    this.button.textContent = 'Stop analysing';
    this.button.classList.remove('primary');
    this.button.disabled = false;
    const frame = () => {
      this.timeline.draw(this.client.serverNow(localNow()), this.client.anchor);
      this.raf = requestAnimationFrame(frame);
    };
    this.raf = requestAnimationFrame(frame);
  }

  async stop(): Promise<void> {
    cancelAnimationFrame(this.raf);
    this.socket?.close();
    this.socket = null;
    await this.mic?.close();
    this.mic = null;
    this.level.value = -60;
    this.button.textContent = 'Start analysing';
    this.button.classList.add('primary');
    this.button.disabled = false;
    this.say('Stopped.');
  }

  private onFrame(frame: Float32Array<ArrayBuffer>, capturedAt: number): void {
    this.socket?.push(frame, capturedAt);
  }

  private onSocketState(s: PcmSocketState, detail?: string): void {
    if (s === 'open') {
      this.showError(null);
      this.say('Analysing');
    } else if (s === 'connecting') this.say('Connecting…');
    else if (s === 'reconnecting') this.say(detail ? `Reconnecting (${detail})…` : 'Connection lost. Reconnecting…');
    else if (detail) {
      this.showError(`Analysis stopped: ${detail}`);
      void this.stop();
    }
  }

  private onMessage(m: AnalysisServerMessage): void {
    if (m.type === 'ready') {
      this.startT = m.start_t ?? 0;
      return;
    }
    if (m.type === 'error') {
      this.showError(`The server refused part of the audio: ${String(m.message)}`);
      return;
    }
    if (!isResult(m)) return;
    this.stats.results++;
    this.tuner.show(m.pitch);
    if (m.pitch) this.stats.lastNote = m.pitch.note;
    const db = Math.max(-60, m.dynamics.rms_db);
    this.level.value = db;
    setText(this.db, m.dynamics.rms_db <= -99 ? '−∞' : m.dynamics.rms_db.toFixed(1));
    setText(this.velocity, String(m.dynamics.velocity));
    const t0 = this.t0ServerMs ?? (this.socket?.streamStartLocalMs != null ? this.client.serverNow(this.socket.streamStartLocalMs) : null);
    if (t0 === null) return;
    const at = (t: number) => t0 + (t - this.startT) * 1000;
    this.timeline.addLevel(at(m.t), m.dynamics.rms_db);
    for (const t of m.onsets) this.timeline.addOnset(at(t));
    this.stats.onsets += m.onsets.length;
    setText(this.onsetCount, `${this.stats.onsets} onset${this.stats.onsets === 1 ? '' : 's'} since starting`);
  }
}
