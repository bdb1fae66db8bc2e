// The peers the DSP benchmark runs beside roomtone in the same run: aubio's
// command-line tools (Debian aubio-tools) and pitchfinder's YIN from npm.
import { spawnSync } from 'node:child_process';
import * as pitchfinderNs from 'pitchfinder';
import type { PitchFrame } from './metrics.ts';

export interface PeerRun {
  frames: PitchFrame[];
  onsets: number[] | null;
  /** CPU seconds the tool used (user + system), pitch and onsets separately. */
  cpuPitchS: number;
  cpuOnsetS: number;
}

export function aubioAvailable(): boolean {
  return spawnSync('aubiopitch', ['--help'], { stdio: 'ignore' }).status !== null;
}

/** Runs a command under bash's `time` and returns its stdout and the CPU seconds of its children. */
function timed(cmd: string[]): { out: string; cpuS: number } {
  const quoted = cmd.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; { time ${quoted} 2>/dev/null ; } 2>&3`], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  });
  const times = (r.output?.[3]?.toString() ?? '').trim().split(/\s+/).map(Number);
  return { out: r.stdout.toString(), cpuS: (times[0] ?? NaN) + (times[1] ?? 0) };
}

export interface AubioOptions {
  hop: number;
  buffer: number;
  /** Seconds added to aubiopitch's times to put them at the centre of its window. */
  pitchShiftS: number;
  onsetMethod?: string;
}

/**
 * aubiopitch (yinfft, its default, with its default tolerance and silence
 * gate; 0 Hz means unvoiced) and aubioonset (default method and threshold).
 */
export function runAubio(file: string, o: AubioOptions): PeerRun {
  const p = timed(['aubiopitch', '-i', file, '-H', String(o.hop), '-B', String(o.buffer), '-u', 'hertz']);
  const frames: PitchFrame[] = [];
  for (const line of p.out.split('\n')) {
    const [t, f] = line.trim().split(/\s+/).map(Number);
    if (Number.isFinite(t) && Number.isFinite(f)) frames.push({ t: t + o.pitchShiftS, f0: f > 0 ? f : null });
  }
  const args = ['aubioonset', '-i', file];
  if (o.onsetMethod) args.push('-O', o.onsetMethod);
  const on = timed(args);
  const onsets = on.out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map(Number)
    .filter(Number.isFinite);
  return { frames, onsets, cpuPitchS: p.cpuS, cpuOnsetS: on.cpuS };
}

type Detector = (x: Float32Array) => number | null;
const PF = ((pitchfinderNs as unknown as { default?: { YIN: (o: object) => Detector } }).default ?? (pitchfinderNs as unknown as { YIN: (o: object) => Detector })) as {
  YIN: (o: object) => Detector;
};

/**
 * pitchfinder's YIN (threshold 0.1, its default) on windows of `window`
 * samples centred every `hop` samples, the same framing as ours. It has no
 * onset detector.
 */
export function runPitchfinderYin(x: Float32Array, rate: number, window: number, hop: number): PeerRun {
  const detect = PF.YIN({ sampleRate: rate });
  const frames: PitchFrame[] = [];
  const buf = new Float32Array(window);
  const c0 = process.cpuUsage();
  for (let c = 0; c < x.length; c += hop) {
    buf.fill(0);
    const from = c - window / 2;
    for (let i = 0; i < window; i++) {
      const j = from + i;
      if (j >= 0 && j < x.length) buf[i] = x[j];
    }
    const f = detect(buf);
    // YIN reports a pitch for almost any frame; above 2.1 kHz or below 40 Hz is out of the range asked.
    frames.push({ t: c / rate, f0: f !== null && f >= 40 && f <= 2100 ? f : null });
  }
  const cpu = process.cpuUsage(c0);
  return { frames, onsets: null, cpuPitchS: (cpu.user + cpu.system) / 1e6, cpuOnsetS: 0 };
}
