// "What's playing?": streams the microphone to the server's live
// identification (WS /api/v1/match/:client_id) and shows the match, and where
// in the track the music is now.

import { type MatchData, type MatchServerMessage, MATCH_BATCH_S, MATCH_CLOSE, MAX_MATCH_FRAME_BYTES } from '../../src/protocol/index.ts';
import { Mic, MicError, rmsDb } from './audio/mic.ts';
import { PcmSocket, wsUrl, type PcmSocketState } from './audio/pcm-socket.ts';
import { byId, describeError, setText, show } from './dom.ts';
import { formatClock, randomId } from './format.ts';

/** After this long without a match the page says so (it keeps listening). */
const NO_MATCH_HINT_S = 20;

const listen = byId<HTMLButtonElement>('listen');
const status = byId('listen-status');
const pill = byId('conn');
const level = byId<HTMLMeterElement>('level');
const micError = byId('mic-error');
const matchBox = byId('match');

let mic: Mic | null = null;
let socket: PcmSocket | null = null;
let match: MatchData | null = null;
/**
 * Audio the stream has taken since it (re)started, sent or held for the next
 * batch, in seconds: what the page shows, moving with every microphone frame
 * though batches go out every 0.5–2 s (as the server advises).
 */
let heardS = 0;
let sampleRate = 48_000;

function setPill(text: string, state: string): void {
  pill.dataset.state = state;
  setText(pill, text);
}

function showError(text: string | null): void {
  setText(micError, text ?? '');
  show(micError, text !== null);
}

function renderMatch(): void {
  show(matchBox, match !== null);
  if (!match) return;
  setText(byId('match-title'), match.title);
  setText(byId('match-artist'), match.artist ?? '');
  setText(byId('match-confidence'), `${Math.round(match.confidence * 100)}%`);
  setText(byId('match-after'), `${match.audio_s.toFixed(1)} s`);
}

/** `offset_s` is where the stream's first sample sits in the track; the music has moved on by what was heard since. */
function renderPosition(): void {
  if (match) setText(byId('match-pos'), formatClock(match.offset_s + heardS * match.speed));
}

/** Receivers check what they use: a frame that is not a well-formed match is ignored. */
function isMatchData(d: unknown): d is MatchData {
  const m = d as Partial<MatchData> | null;
  return (
    typeof m === 'object' && m !== null &&
    typeof m.title === 'string' && typeof m.offset_s === 'number' && typeof m.confidence === 'number' &&
    typeof m.audio_s === 'number' && typeof m.speed === 'number' && (m.artist === null || typeof m.artist === 'string')
  );
}

/** Frames of the microphone, in samples. */
const MIC_FRAME = 4096;

/**
 * Batches the size the server advises (`frame_s`: the batch it matches now),
 * less one microphone frame, by which a batch may overshoot, so a message
 * stays within the frame limit at any rate.
 */
function followAdvice(frameS: unknown): void {
  if (typeof frameS !== 'number' || !(frameS > 0) || !socket) return;
  socket.setBatchSamples(Math.max(MIC_FRAME, Math.min(Math.round(frameS * sampleRate), MAX_MATCH_FRAME_BYTES / 4 - MIC_FRAME)));
}

function onMessage(msg: MatchServerMessage): void {
  switch (msg.type) {
    case 'ready':
      followAdvice(msg.data?.frame_s);
      return;
    case 'match':
      if (!isMatchData(msg.data)) return;
      match = msg.data;
      renderMatch();
      renderPosition();
      return;
    case 'status':
    case 'ended':
      followAdvice(msg.data?.frame_s);
      // A match reported while this page was reconnecting still arrives in the status.
      if (!match && isMatchData(msg.data?.match)) {
        match = msg.data.match;
        renderMatch();
        renderPosition();
      }
      return;
    case 'error':
      showError(`The server refused the audio: ${String(msg.message)}`);
      return;
    default:
      return;
  }
}

function onFrame(frame: Float32Array<ArrayBuffer>, capturedAt: number): void {
  level.value = Math.max(-60, rmsDb(frame));
  if (!socket?.push(frame, capturedAt)) return;
  heardS = socket.samplesTaken / sampleRate;
  if (!match) {
    setText(status, heardS >= NO_MATCH_HINT_S
      ? `Listening… ${heardS.toFixed(1)} s. No match yet: move closer to the music, or it may not be in the catalog.`
      : `Listening… ${heardS.toFixed(1)} s`);
  } else {
    setText(status, `Listening… ${heardS.toFixed(1)} s`);
    renderPosition();
  }
}

function onSocketState(s: PcmSocketState, detail?: string): void {
  if (s === 'open') {
    heardS = 0;
    match = null;
    renderMatch();
    setPill('Listening', 'open');
    showError(null);
  } else if (s === 'reconnecting') {
    setPill('Reconnecting…', 'reconnecting');
    setText(status, 'Connection lost. Reconnecting…');
  } else if (s === 'connecting') {
    setPill('Connecting…', 'connecting');
  } else if (detail) {
    setPill('Stopped', 'closed');
    showError(`Identification stopped: ${detail}`);
    void stop();
  }
}

async function start(): Promise<void> {
  showError(null);
  listen.disabled = true;
  setText(status, 'Asking for the microphone…');
  try {
    mic = await Mic.open({ frameSize: MIC_FRAME, onFrame });
  } catch (e) {
    listen.disabled = false;
    setText(status, 'Not listening.');
    showError(e instanceof MicError ? e.message : describeError(e));
    return;
  }
  sampleRate = mic.sampleRate;
  mic.onEnded(() => {
    showError('The microphone stopped (unplugged, or permission was withdrawn).');
    void stop();
  });
  socket = new PcmSocket({
    url: wsUrl(`/api/v1/match/${randomId('web')}`),
    hello: () => ({ type: 'hello', sample_rate: sampleRate, format: 'f32', channels: 1 }),
    isReady: (m) => m.type === 'ready',
    onMessage: (m) => onMessage(m as unknown as MatchServerMessage),
    onState: onSocketState,
    // The server matches no smaller batch, and every message costs it CPU; its ready and status say what it matches later.
    batchSamples: Math.round(MATCH_BATCH_S * sampleRate),
    finalCodes: {
      [MATCH_CLOSE.disconnected]: 'the server ended this stream',
      [MATCH_CLOSE.replaced]: 'another page took over this stream',
      [MATCH_CLOSE.misbehaving]: 'the server refused the audio',
    },
  });
  listen.textContent = 'Stop';
  listen.classList.remove('primary');
  listen.disabled = false;
  setText(status, 'Listening…');
}

async function stop(): Promise<void> {
  const s = socket;
  socket = null;
  if (s) {
    s.sendJson({ type: 'end' });
    s.close();
  }
  await mic?.close();
  mic = null;
  level.value = -60;
  listen.textContent = 'Listen';
  listen.classList.add('primary');
  listen.disabled = false;
  setPill('Not listening', 'idle');
  setText(status, match ? `Stopped after ${heardS.toFixed(1)} s.` : 'Not listening.');
}

listen.addEventListener('click', () => void (mic ? stop() : start()));
