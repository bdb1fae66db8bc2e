// `roomtone analyze FILE.wav [--json]`: offline pitch, onsets and dynamics of
// a WAV file, with the same DSP the analysis streams run at the edge.
import type { Command } from 'commander';
import { readWavFile, WavError } from '../wav.ts';
import { CliError } from '../cli-error.ts';
import { loadKissFFT } from '../../wasm/kissfft-node.ts';
import { analyzeSamples, OfflineRateError, type AnalysisDocument } from '../../wasm/dsp/offline.ts';
import { describePitch, hzToMidi } from '../../wasm/dsp/notes.ts';

export interface NoteSegment {
  start: number;
  end: number;
  note: string;
  hz: number;
  cents: number;
}

/** Runs of voiced frames on one note (at least `minFrames` long), for the human-readable summary. */
export function noteSegments(doc: AnalysisDocument, minFrames = 3): NoteSegment[] {
  const out: NoteSegment[] = [];
  let run: { midi: number; first: number; last: number; hz: number[] } | null = null;
  const close = () => {
    if (run && run.hz.length >= minFrames) {
      const sorted = [...run.hz].sort((a, b) => a - b);
      const hz = sorted[sorted.length >> 1];
      const d = describePitch(hz);
      out.push({ start: run.first, end: run.last + doc.hop_s, note: d.note, hz, cents: d.cents });
    }
    run = null;
  };
  for (const f of doc.frames) {
    if (f.f0 === null) {
      close();
      continue;
    }
    const midi = Math.round(hzToMidi(f.f0));
    if (!run || run.midi !== midi) {
      close();
      run = { midi, first: f.t, last: f.t, hz: [] };
    }
    run.last = f.t;
    run.hz.push(f.f0);
  }
  close();
  return out;
}

export async function analyzeFile(path: string): Promise<{ doc: AnalysisDocument; channels: number; bitDepth: number; encoding: string; durationS: number }> {
  let wav;
  try {
    wav = await readWavFile(path);
  } catch (e) {
    if (e instanceof WavError) throw new CliError(e.message, 2);
    throw e;
  }
  try {
    const doc = analyzeSamples(await loadKissFFT(), wav.samples, wav.sampleRate);
    return { doc, channels: wav.channels, bitDepth: wav.bitDepth, encoding: wav.encoding, durationS: wav.durationS };
  } catch (e) {
    if (e instanceof OfflineRateError) throw new CliError(`${path}: ${e.message}`, 2);
    throw e;
  }
}

export function registerAnalyze(program: Command): void {
  program
    .command('analyze')
    .description('pitch, onsets and dynamics of a WAV file (PCM 8/16/24/32-bit or float, any channels and rate)')
    .argument('<file>', 'a .wav file')
    .option('--json', 'print one JSON document: {sample_rate, hop_s, frames:[{t, f0, confidence, rms_db}], onsets:[s…]}')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { doc, channels, bitDepth, encoding, durationS } = await analyzeFile(file);
      if (opts.json) {
        process.stdout.write(JSON.stringify(doc) + '\n');
        return;
      }
      const notes = noteSegments(doc);
      const voiced = doc.frames.filter((f) => f.f0 !== null).length;
      const loudest = doc.frames.reduce((m, f) => Math.max(m, f.rms_db), -120);
      const lines = [
        `${file}: ${durationS.toFixed(2)} s, ${doc.sample_rate} Hz, ${channels === 1 ? 'mono' : `${channels} channels (mixed to mono)`}, ${bitDepth}-bit ${encoding}`,
        `${doc.frames.length} frames every ${(doc.hop_s * 1000).toFixed(1)} ms, ${voiced} voiced; loudest hop ${loudest.toFixed(1)} dBFS RMS`,
        `onsets (${doc.onsets.length}): ${doc.onsets.map((t) => t.toFixed(3)).join(' ') || 'none'}`,
        `notes (${notes.length}):`,
        ...notes.map((n) => `  ${n.start.toFixed(3)}–${n.end.toFixed(3)} s  ${n.note.padEnd(4)} ${n.hz.toFixed(1).padStart(7)} Hz  ${n.cents >= 0 ? '+' : ''}${n.cents.toFixed(0)} cents`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
