// npm run bench:match — live identification, measured.
//
// Catalog: rendered multi-instrument MIDI pieces plus, when Debian's
// hedgewars-data is installed, the game's soundtracks (real recordings).
// Negatives: other pieces and recordings that are not in the catalog.
// Queries: 10 s excerpts at seeded random positions, degraded (clean,
// white noise at 10/5/0 dB SNR, MP3 at 32 and 64 kbit/s, −20 dB gain,
// telephone band 300–3400 Hz, ±3% and ±2% speed), each streamed in 0.1 s
// chunks through the same LiveMatcher the MatchStream object runs, with
// `audio_s` accounting (faster than real time, same decisions).
//
// Baseline in the same run: the matcher without the speed search (the
// `exactSpeed` preset), i.e. a plain landmark matcher.
//
// Then end to end on the local runtime (workerd): ingestion through the REST
// API (fingerprints from the CLI code, and WAV bodies fingerprinted by the
// worker) and queries through `WS /api/v1/match/:client_id`, with the
// runtime's CPU per second of query audio (the deployed path's cost per core);
// baseline in the same run: the same traffic to a Durable Object that only
// reads the frames (bench/support/bare-sink), the runtime's own floor.
//
// Env: BENCH_MATCH_MIDI (catalog MIDI pieces, 20), BENCH_MATCH_QUERIES (per
// track and degradation, 2), BENCH_MATCH_E2E=0 to skip the end-to-end part;
// while iterating: BENCH_MATCH_ONLY (comma-separated degradation names, e.g.
// "clean,snr 0 dB,speed +3%"), BENCH_MATCH_BASELINE=0 (no exactSpeed run),
// BENCH_MATCH_NEGATIVES (queries per negative track, 8), BENCH_MATCH_MONITOR=0
// (no in-process measurement of monitored streams).
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadKissFFT } from '../wasm/kissfft-node.ts';
import { FINGERPRINT_PRESETS, FINGERPRINT_VERSION, LiveMatcher, MATCH_PRESETS, MemoryIndex, fingerprintSignal, type MatchConfig, type PushResult } from '../wasm/fingerprint/index.ts';
import { addNoise, changeSpeed, gain, rng, telephone } from '../wasm/fingerprint/test-signals.ts';
import { encodeWav } from '../wasm/wav.ts';
import { MATCH_BATCH_S, maxMatchFrameS } from '../src/protocol/index.ts';
import { fmt, percentile, table } from './support/stats.ts';
import { hasTool, lossy, midiTrack, recordings, RATE, type CorpusTrack } from './support/match-corpus.ts';

const MIDI_TRACKS = Number(process.env.BENCH_MATCH_MIDI ?? 20);
const MIDI_NEGATIVES = 20;
const QUERIES = Number(process.env.BENCH_MATCH_QUERIES ?? 2);
const NEGATIVE_QUERIES = Number(process.env.BENCH_MATCH_NEGATIVES ?? 8);
const ONLY = process.env.BENCH_MATCH_ONLY?.split(',').map((x) => x.trim());
const BASELINE = process.env.BENCH_MATCH_BASELINE !== '0';
const QUERY_S = 10;
const CHUNK_S = 0.1;
const OFFSET_TOLERANCE_S = 0.1;
const E2E = process.env.BENCH_MATCH_E2E !== '0';
const MONITOR = process.env.BENCH_MATCH_MONITOR !== '0';
/** Frames of a monitored stream: what `npx roomtone identify` and the page send. */
const MONITOR_CHUNK_S = MATCH_BATCH_S;

if (!hasTool('fluidsynth') || !hasTool('ffmpeg')) {
  console.error('bench:match needs fluidsynth (with fluid-soundfont-gm) and ffmpeg: apt-get install fluidsynth fluid-soundfont-gm ffmpeg');
  process.exit(2);
}

const kiss = await loadKissFFT();
/** CPU seconds of this process (user + system): on a shared machine, per-core cost is CPU time, not wall time. */
const cpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const fp = FINGERPRINT_PRESETS.default;

// ---- corpus ----
const t0 = performance.now();
const real = recordings();
// Every fourth recording is held out as a negative; variants of one theme stay together.
const realNeg = real.filter((t, i) => i % 4 === 3 && !/olympics/i.test(t.name));
const realCat = real.filter((t) => !realNeg.includes(t));
const catalog: CorpusTrack[] = [...realCat, ...Array.from({ length: MIDI_TRACKS }, (_, i) => midiTrack(1000 + i, 75))];
const negatives: CorpusTrack[] = [...realNeg, ...Array.from({ length: MIDI_NEGATIVES }, (_, i) => midiTrack(5000 + i, 45))];
console.log(`corpus: ${catalog.length} catalog tracks (${realCat.length} recordings, ${MIDI_TRACKS} MIDI), ${negatives.length} negatives (${realNeg.length} recordings) in ${fmt((performance.now() - t0) / 1000, 1)} s`);

// ---- ingestion (in process) ----
const index = new MemoryIndex();
let ingestAudioS = 0;
let ingestCpuS = 0;
let landmarks = 0;
for (const [i, t] of catalog.entries()) {
  const s = cpuS();
  const f = fingerprintSignal(kiss, fp, t.samples, RATE);
  ingestCpuS += cpuS() - s;
  ingestAudioS += t.samples.length / RATE;
  landmarks += f.hashes.length;
  index.add(i + 1, f.hashes, f.times);
}
console.log(`ingestion: ${fmt(ingestAudioS / 60, 1)} min of audio in ${fmt(ingestCpuS, 2)} s CPU = ${fmt(ingestAudioS / ingestCpuS, 0)}× real time; ${fmt(landmarks / ingestAudioS, 1)} landmarks/s`);

// ---- queries ----
type Degrade = (x: Float32Array, tag: string) => Float32Array;
interface Degradation {
  name: string;
  /** Speed the excerpt is played at (source seconds per output second). */
  speed: number;
  apply: Degrade;
}
const degradations: Degradation[] = [
  { name: 'clean', speed: 1, apply: (x) => x },
  { name: 'snr 10 dB', speed: 1, apply: (x, tag) => addNoise(x, 10, hashTag(tag)) },
  { name: 'snr 5 dB', speed: 1, apply: (x, tag) => addNoise(x, 5, hashTag(tag)) },
  { name: 'snr 0 dB', speed: 1, apply: (x, tag) => addNoise(x, 0, hashTag(tag)) },
  { name: 'mp3 32 kbit/s', speed: 1, apply: (x, tag) => lossy(x, 'libmp3lame', '32k', tag) },
  { name: 'mp3 64 kbit/s', speed: 1, apply: (x, tag) => lossy(x, 'libmp3lame', '64k', tag) },
  { name: 'gain −20 dB', speed: 1, apply: (x) => gain(x, -20) },
  { name: 'telephone', speed: 1, apply: (x) => telephone(x, RATE) },
  { name: 'speed +3%', speed: 1.03, apply: (x) => changeSpeed(x, RATE, 1.03) },
  { name: 'speed −3%', speed: 0.97, apply: (x) => changeSpeed(x, RATE, 0.97) },
  { name: 'speed +2%', speed: 1.02, apply: (x) => changeSpeed(x, RATE, 1.02) },
  { name: 'speed −2%', speed: 0.98, apply: (x) => changeSpeed(x, RATE, 0.98) },
];

function hashTag(tag: string): number {
  let h = 2166136261;
  for (let i = 0; i < tag.length; i++) h = Math.imul(h ^ tag.charCodeAt(i), 16777619);
  return h >>> 0;
}

interface Outcome {
  track: number | null;
  offsetS: number;
  audioS: number | null;
  cpuMs: number;
}

/**
 * Streams `q` through a new live matcher on the in-memory catalog (as the
 * MatchStream object runs one on the shards), in frames of `frameS` seconds. `each`
 * sees every push (its result, and the audio the matcher had consumed
 * before it); returning true ends the stream there.
 */
async function feed(q: Float32Array, cfg: MatchConfig, frameS: number, each: (r: PushResult, m: LiveMatcher, beforeS: number) => boolean | void): Promise<void> {
  const m = new LiveMatcher(kiss, fp, cfg, RATE, (h, cap) => index.lookup(h, cap));
  const step = Math.round(frameS * RATE);
  try {
    for (let o = 0; o < q.length; o += step) {
      const beforeS = m.audioS;
      if (each(await m.push(q.subarray(o, Math.min(q.length, o + step))), m, beforeS) === true) return;
    }
  } finally {
    m.dispose();
  }
}

async function stream(q: Float32Array, cfg: MatchConfig): Promise<Outcome> {
  const s = cpuS();
  let first: Outcome | null = null;
  // Cost is measured over the whole query, as a stream that keeps listening pays it.
  await feed(q, cfg, CHUNK_S, (r) => {
    if (r.match && !first) first = { track: r.match.track, offsetS: r.match.offsetS, audioS: r.match.audioS, cpuMs: 0 };
  });
  const cpuMs = (cpuS() - s) * 1000;
  const found = first as Outcome | null;
  return found ? { ...found, cpuMs } : { track: null, offsetS: NaN, audioS: null, cpuMs };
}

interface Row {
  name: string;
  kind: string;
  queries: number;
  top1: number;
  offsetOk: number;
  times: number[];
  wrong: number;
  cpuMs: number;
  audioS: number;
}

/** Right track, offset off by more than OFFSET_TOLERANCE_S: listed so loops can be told from real errors. */
const offsetMisses: Array<{ degradation: string; track: string; true_s: number; reported_s: number; audio_s: number }> = [];

async function runQueries(cfg: MatchConfig, which: Degradation[], label: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const d of which) {
    for (const kind of ['recording', 'midi'] as const) {
      const row: Row = { name: d.name, kind, queries: 0, top1: 0, offsetOk: 0, times: [], wrong: 0, cpuMs: 0, audioS: 0 };
      for (const [i, t] of catalog.entries()) {
        if (t.kind !== kind) continue;
        const rand = rng(hashTag(`${t.name}`));
        for (let k = 0; k < QUERIES; k++) {
          const srcLen = Math.ceil((QUERY_S + 0.5) * d.speed * RATE);
          const start = Math.floor(rand() * Math.max(1, t.samples.length - srcLen - RATE));
          const tag = `${t.name}-${k}-${d.name.replace(/\W+/g, '')}`;
          const q = d.apply(t.samples.slice(start, start + srcLen), tag).subarray(0, QUERY_S * RATE);
          const out = await stream(q, cfg);
          row.queries++;
          row.cpuMs += out.cpuMs;
          row.audioS += q.length / RATE;
          if (out.track === i + 1) {
            row.top1++;
            row.times.push(out.audioS!);
            if (Math.abs(out.offsetS - start / RATE) <= OFFSET_TOLERANCE_S) row.offsetOk++;
            else offsetMisses.push({ degradation: d.name, track: t.name, true_s: start / RATE, reported_s: out.offsetS, audio_s: out.audioS! });
          } else if (out.track !== null) row.wrong++;
        }
      }
      if (row.queries) rows.push(row);
    }
    process.stderr.write(`  ${label}: ${d.name} done\n`);
  }
  return rows;
}

async function runNegatives(cfg: MatchConfig): Promise<{ queries: number; falsePositives: number; byKind: Record<string, [number, number]>; lookupXRealtime: number }> {
  let queries = 0;
  let fps = 0;
  let cpuMs = 0;
  const byKind: Record<string, [number, number]> = {};
  for (const t of negatives) {
    const rand = rng(hashTag(`neg-${t.name}`));
    for (let k = 0; k < NEGATIVE_QUERIES; k++) {
      const start = Math.floor(rand() * Math.max(1, t.samples.length - QUERY_S * RATE));
      let q: Float32Array = t.samples.slice(start, start + QUERY_S * RATE);
      if (k % 2 === 1) q = addNoise(q, 10, k);
      const out = await stream(q, cfg);
      queries++;
      cpuMs += out.cpuMs;
      const kk = (byKind[t.kind] ??= [0, 0]);
      kk[0]++;
      if (out.track !== null) {
        fps++;
        kk[1]++;
      }
    }
  }
  // Audio that never matches pays for every speed hypothesis throughout: the worst case of lookup cost.
  return { queries, falsePositives: fps, byKind, lookupXRealtime: (queries * QUERY_S) / (cpuMs / 1000) };
}

function rowCells(r: Row): Array<string | number> {
  return [
    r.name,
    r.kind,
    r.queries,
    `${fmt((100 * r.top1) / r.queries, 1)}%`,
    `${fmt((100 * r.offsetOk) / r.queries, 1)}%`,
    r.wrong,
    r.times.length ? fmt(percentile(r.times, 50), 2) : '–',
    r.times.length ? fmt(percentile(r.times, 90), 2) : '–',
    fmt(r.audioS / (r.cpuMs / 1000), 0),
  ];
}

function merged(rows: Row[]): Row[] {
  const byName = new Map<string, Row>();
  for (const r of rows) {
    const m = byName.get(r.name) ?? { ...r, kind: 'all', queries: 0, top1: 0, offsetOk: 0, times: [], wrong: 0, cpuMs: 0, audioS: 0 };
    m.queries += r.queries;
    m.top1 += r.top1;
    m.offsetOk += r.offsetOk;
    m.times.push(...r.times);
    m.wrong += r.wrong;
    m.cpuMs += r.cpuMs;
    m.audioS += r.audioS;
    byName.set(r.name, m);
  }
  return [...byName.values()];
}

const HEAD = ['degradation', 'music', 'queries', 'top-1', 'offset ±0.1 s', 'wrong track', 'first match p50 (s)', 'p90 (s)', 'lookup × RT (CPU)'];

// Warm-up, not measured: the first queries of a process run unoptimised code
// (V8 compiles the hot loops after a while), which a long-running server
// does not, and which would otherwise land on whichever degradation runs first.
for (const t of catalog.slice(0, 8)) await stream(t.samples.subarray(0, QUERY_S * RATE), MATCH_PRESETS.default);
for (const t of negatives.slice(0, 4)) await stream(t.samples.subarray(0, QUERY_S * RATE), MATCH_PRESETS.default);

console.log(`\nqueries with the default preset (speed search over ${MATCH_PRESETS.default.speeds.length} hypotheses), ${QUERY_S} s each, streamed in ${CHUNK_S} s chunks:`);
const rows = await runQueries(MATCH_PRESETS.default, ONLY ? degradations.filter((d) => ONLY.includes(d.name)) : degradations, 'default');
const all = merged(rows);
console.log(table(HEAD, all.map(rowCells)));
console.log('\nby kind of music:');
console.log(table(HEAD, rows.map(rowCells)));
console.log(`\noffset misses (right track, offset off by more than ${OFFSET_TOLERANCE_S} s): ${offsetMisses.length}`);
for (const m of offsetMisses) console.log(`  ${m.degradation}: ${m.track} at ${fmt(m.true_s, 2)} s, reported ${fmt(m.reported_s, 2)} s (off by ${fmt(m.reported_s - m.true_s, 2)} s) after ${fmt(m.audio_s, 1)} s`);
const neg = await runNegatives(MATCH_PRESETS.default);
console.log(`\nnegatives: ${neg.falsePositives} false positives in ${neg.queries} non-catalog queries = ${fmt((100 * neg.falsePositives) / neg.queries, 2)}% (${Object.entries(neg.byKind).map(([k, [n, f]]) => `${k}: ${f}/${n}`).join(', ')}); lookup ${fmt(neg.lookupXRealtime, 0)}× real time (CPU) on audio that never matches`);

// Streams that begin where the music begins: the negatives above start at
// seeded random positions, and a stream's first second is when the fewest
// chance votes stand against a coincidence.
const openings = { queries: 0, falsePositives: 0, reported: [] as Array<{ negative: string; track: string; offset_s: number; audio_s: number }> };
for (const t of negatives) {
  const out = await stream(t.samples.slice(0, QUERY_S * RATE), MATCH_PRESETS.default);
  openings.queries++;
  if (out.track !== null) {
    openings.falsePositives++;
    openings.reported.push({ negative: t.name, track: catalog[out.track - 1].name, offset_s: out.offsetS, audio_s: out.audioS! });
  }
}
console.log(`negatives from their first sample: ${openings.falsePositives} false positives in ${openings.queries} = ${fmt((100 * openings.falsePositives) / openings.queries, 2)}%${openings.reported.map((r) => `; ${r.negative} reported as ${r.track} at ${fmt(r.offset_s, 2)} s after ${fmt(r.audio_s, 1)} s`).join('')}`);
console.log(`all negatives: ${neg.falsePositives + openings.falsePositives} false positives in ${neg.queries + openings.queries} = ${fmt((100 * (neg.falsePositives + openings.falsePositives)) / (neg.queries + openings.queries), 2)}%`);

// ---- monitored streams: past the first vote window ----
// A monitored stream spends most of its life on audio outside the catalog,
// past its first vote window, searching every speed hypothesis. Baseline in
// the same run: the same matcher without the speed search (exactSpeed).
let monitored: Record<string, unknown> | null = null;
if (MONITOR) {
  const MON_S = 40;
  const PREFIX_S = 20;
  const searches = { speed_search: MATCH_PRESETS.default, exact_speed: MATCH_PRESETS.exactSpeed } as const;
  /** CPU and distinct hashes looked up past the first window, per second of audio, on a stream outside the catalog. */
  const pastWindow = async (q: Float32Array, cfg: MatchConfig): Promise<{ cpuS: number; lookups: number; audioS: number; matched: boolean }> => {
    let cpu = 0;
    let lookups = 0;
    let audioS = 0;
    let matched = false;
    let mark = cpuS();
    let seen = 0;
    await feed(q, cfg, MONITOR_CHUNK_S, (r, m, beforeS) => {
      if (beforeS >= cfg.windowS) {
        cpu += cpuS() - mark;
        lookups += m.lookups - seen;
        audioS += m.audioS - beforeS;
      }
      if (r.match) matched = true;
      seen = m.lookups;
      mark = cpuS();
    });
    return { cpuS: cpu, lookups, audioS, matched };
  };
  const streams = negatives.filter((t) => t.samples.length >= MON_S * RATE).flatMap((t, i) => [t.samples.slice(0, MON_S * RATE), addNoise(t.samples.slice(0, MON_S * RATE), 10, i)]);
  const cost = { speed_search: { cpuS: 0, lookups: 0, audioS: 0, matched: 0 }, exact_speed: { cpuS: 0, lookups: 0, audioS: 0, matched: 0 } };
  // Alternating stream by stream, so a phase of the machine weighs on both alike.
  for (const [i, q] of streams.entries()) {
    for (const name of i % 2 ? (['speed_search', 'exact_speed'] as const) : (['exact_speed', 'speed_search'] as const)) {
      const r = await pastWindow(q, searches[name]);
      const c = cost[name];
      c.cpuS += r.cpuS;
      c.lookups += r.lookups;
      c.audioS += r.audioS;
      if (r.matched) c.matched++;
    }
  }
  const perS = (c: (typeof cost)['speed_search']) => ({ cpu_ms_per_s: (1000 * c.cpuS) / c.audioS, x_realtime: c.audioS / c.cpuS, lookups_per_s: c.lookups / c.audioS, streams_matched: c.matched });
  const costs = { speed_search: perS(cost.speed_search), exact_speed: perS(cost.exact_speed) };
  console.log(`\nmonitored streams outside the catalog (${streams.length} × ${MON_S} s, ${MONITOR_CHUNK_S} s frames), past the first ${MATCH_PRESETS.default.windowS} s:`);
  for (const [name, c] of Object.entries(costs)) console.log(`  ${name === 'speed_search' ? 'speed search (default)' : 'exactSpeed (baseline)'}: ${fmt(c.cpu_ms_per_s, 2)} ms CPU per s of audio = ${fmt(c.x_realtime, 0)}× real time; ${fmt(c.lookups_per_s, 0)} hashes looked up per s; ${c.streams_matched} streams reported a track`);
  console.log(`  speed search / baseline: CPU ${fmt(costs.speed_search.cpu_ms_per_s / costs.exact_speed.cpu_ms_per_s, 2)}×, lookups ${fmt(costs.speed_search.lookups_per_s / costs.exact_speed.lookups_per_s, 2)}×`);
  // A catalog track at another speed that begins after PREFIX_S s outside the catalog. Absolute figures: the query
  // rows above (the same speeds from a stream's first sample, other excerpts) are what to read them against.
  const lateHead = ['track begins after 20 s outside the catalog', 'streams', 'matched', 'p50 (s after it began)', 'p90 (s)'];
  const lateRows: Array<Array<string | number>> = [];
  const late: Array<Record<string, unknown>> = [];
  for (const speed of [1.03, 0.97, 1.02, 0.98]) {
    const times: number[] = [];
    for (const [i, t] of catalog.entries()) {
      const rand = rng(hashTag(`late-${t.name}`));
      const start = Math.floor(rand() * (t.samples.length - (QUERY_S + 2) * RATE));
      const x = changeSpeed(t.samples.slice(start, start + (QUERY_S + 2) * RATE), RATE, speed).subarray(0, QUERY_S * RATE);
      const before = negatives[i % negatives.length].samples.subarray(0, PREFIX_S * RATE);
      const q = new Float32Array(before.length + x.length);
      q.set(before);
      q.set(x, before.length);
      await feed(q, MATCH_PRESETS.default, MONITOR_CHUNK_S, (r) => {
        if (r.match?.track !== i + 1 || r.match.audioS <= PREFIX_S) return false;
        times.push(r.match.audioS - PREFIX_S);
        return true;
      });
    }
    const label = `speed ${speed > 1 ? '+' : '−'}${fmt(Math.abs(speed - 1) * 100, 0)}%`;
    lateRows.push([label, String(catalog.length), `${times.length}/${catalog.length}`, times.length ? fmt(percentile(times, 50), 1) : '–', times.length ? fmt(percentile(times, 90), 1) : '–']);
    late.push({ speed, streams: catalog.length, matched: times.length, p50_s: percentile(times, 50), p90_s: percentile(times, 90) });
  }
  console.log(table(lateHead, lateRows));
  monitored = { past_window: costs, late_off_speed_track: late };
}

let baseline: Record<string, unknown> | null = null;
if (BASELINE) {
  console.log('\nbaseline in the same run: the same matcher without the speed search (exactSpeed preset):');
  const baseDegr = degradations.filter((d) => ['clean', 'snr 5 dB', 'speed +3%', 'speed −3%', 'speed +2%'].includes(d.name));
  const baseRows = merged(await runQueries(MATCH_PRESETS.exactSpeed, baseDegr, 'baseline'));
  console.log(table(HEAD, baseRows.map(rowCells)));
  const baseNeg = await runNegatives(MATCH_PRESETS.exactSpeed);
  console.log(`baseline negatives: ${baseNeg.falsePositives}/${baseNeg.queries} = ${fmt((100 * baseNeg.falsePositives) / baseNeg.queries, 2)}%`);
  const cleanCost = all.find((r) => r.name === 'clean');
  const baseCleanCost = baseRows.find((r) => r.name === 'clean')!;
  if (cleanCost) console.log(`speed search cost: ${fmt(cleanCost.cpuMs / cleanCost.audioS / (baseCleanCost.cpuMs / baseCleanCost.audioS), 2)}× the CPU of the plain matcher per second of query`);
  baseline = { queries: baseRows.map((r) => ({ degradation: r.name, top1: r.top1 / r.queries, first_match_p50_s: percentile(r.times, 50), lookup_x_realtime: r.audioS / (r.cpuMs / 1000) })), negatives: baseNeg };
}

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  catalog: { tracks: catalog.length, recordings: realCat.length, midi: MIDI_TRACKS, audio_min: ingestAudioS / 60, landmarks_per_s: landmarks / ingestAudioS },
  ingestion_x_realtime_in_process: ingestAudioS / ingestCpuS,
  queries: all.map((r) => ({ degradation: r.name, queries: r.queries, top1: r.top1 / r.queries, offset_ok: r.offsetOk / r.queries, wrong: r.wrong, first_match_p50_s: percentile(r.times, 50), first_match_p90_s: percentile(r.times, 90), lookup_x_realtime: r.audioS / (r.cpuMs / 1000) })),
  by_kind: rows.map((r) => ({ degradation: r.name, kind: r.kind, queries: r.queries, top1: r.top1 / r.queries, first_match_p50_s: percentile(r.times, 50), first_match_p90_s: percentile(r.times, 90) })),
  offset_misses: offsetMisses,
  negatives: neg,
  negatives_from_start: openings,
  baseline_exact_speed: baseline,
  monitored_in_process: monitored,
};

// ---- end to end on workerd ----
if (E2E) {
  const { startLocalServer } = await import('../tests/support/local-server.ts');
  const { identifySamples } = await import('../agent/commands/identify.ts');
  const { cpuDuring, descendants, procAvailable, runsWorker } = await import('./support/proc-cpu.ts');
  const server = await startLocalServer();
  try {
    const admin = { authorization: 'Bearer test-admin-token' };
    const subset = catalog.slice(0, Math.min(10, catalog.length));
    let jsonAudio = 0;
    let jsonWall = 0;
    const ids: number[] = [];
    for (const t of subset) {
      const f = fingerprintSignal(kiss, fp, t.samples, RATE);
      const s = performance.now();
      const res = await fetch(`${server.url}/api/v1/catalog/tracks?wait=1`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ title: t.name, duration_s: t.samples.length / RATE, fingerprint_version: FINGERPRINT_VERSION, hashes: Array.from(f.hashes), times: Array.from(f.times) }),
      });
      if (res.status !== 201) throw new Error(`ingest ${t.name}: ${res.status} ${await res.text()}`);
      jsonWall += (performance.now() - s) / 1000;
      jsonAudio += t.samples.length / RATE;
      ids.push(((await res.json()) as { track_id: number }).track_id);
    }
    let wavAudio = 0;
    let wavWall = 0;
    for (const t of catalog.slice(subset.length, subset.length + 5)) {
      const body = encodeWav(t.samples, RATE);
      const s = performance.now();
      const res = await fetch(`${server.url}/api/v1/catalog/tracks?wait=1&title=${encodeURIComponent(t.name)}`, { method: 'POST', headers: { ...admin, 'content-type': 'audio/wav' }, body: body as Uint8Array<ArrayBuffer> });
      if (res.status !== 201) throw new Error(`ingest ${t.name}: ${res.status} ${await res.text()}`);
      wavWall += (performance.now() - s) / 1000;
      wavAudio += t.samples.length / RATE;
    }
    const listed = (await (await fetch(`${server.url}/api/v1/catalog/tracks?limit=100`)).json()) as { tracks: { fingerprints: number }[] };
    const catalogRows = listed.tracks.reduce((n, t) => n + t.fingerprints, 0);
    const e2eTimes: number[] = [];
    const e2eWallPerAudio: number[] = [];
    let e2eOk = 0;
    let e2eQueries = 0;
    // The runtime's CPU over the live queries: worker, MatchStream objects, shards and registry
    // together, i.e. what a second of query audio costs the deployed path per core.
    // wrangler dev runs two workerd processes, reported apart: the runtime and a proxy in front of it.
    const workerd = procAvailable() ? descendants(server.process.pid!, 'workerd') : [];
    const runtime = workerd.filter(runsWorker);
    // The first lookup makes each shard read its rows from SQLite into memory, once per
    // object's lifetime: measured apart, with one short query, so the figure below is the steady cost.
    const [firstQueryCpuS] = await cpuDuring([runtime], () => identifySamples(new URL(server.url), subset[0].samples.slice(0, RATE), RATE, { full: true, clientId: 'bench-first' }));
    const [e2eCpuS, runtimeCpuS] = await cpuDuring([workerd, runtime], async () => {
      for (const [i, t] of subset.entries()) {
        const rand = rng(hashTag(`e2e-${t.name}`));
        for (let k = 0; k < 2; k++) {
          const start = Math.floor(rand() * (t.samples.length - (QUERY_S + 1) * RATE));
          const q = addNoise(t.samples.slice(start, start + QUERY_S * RATE), 10, k);
          const s = performance.now();
          const r = await identifySamples(new URL(server.url), q, RATE, { full: true, clientId: `bench-${i}-${k}` });
          e2eWallPerAudio.push((performance.now() - s) / QUERY_S);
          e2eQueries++;
          if (r.match?.track_id === ids[i]) {
            e2eOk++;
            e2eTimes.push(r.first_match_s!);
          }
        }
      }
    });
    // What a connection costs whatever it streams (upgrade, limiter, registry, a matcher's
    // tables, close), from ten of 0.2 s each: a query of 10 s pays it once, a monitored stream
    // of hours once in hours. The rest of the figure above is the cost per second of audio.
    const CONNECT_AUDIO_S = 0.2;
    const [connectCpuS] = await cpuDuring([runtime], async () => {
      for (let i = 0; i < 10; i++) {
        const t = subset[i % subset.length];
        await identifySamples(new URL(server.url), addNoise(t.samples.slice(0, Math.round(CONNECT_AUDIO_S * RATE)), 10, i), RATE, { full: true, clientId: `bench-connect-${i}` });
      }
    });
    const connectionCpuS = connectCpuS / 10;
    // A monitored stream spends most of its life on audio outside the catalog. Four such
    // streams of 40 s at once: once each is past its first vote window (long batches from
    // there) and paced at real time, the runtime's CPU against the audio each object says it
    // matched meanwhile (monitoring detail), connections and bursts aside.
    const MONITOR_S = 40;
    const WINDOW_S = MATCH_PRESETS.default.windowS;
    const monitored = negatives.filter((t) => t.samples.length >= MONITOR_S * RATE).slice(0, 4);
    const monitorIds = monitored.map((_, i) => `bench-monitor-${i}`);
    /** Audio each stream's object has matched so far; 0 for one not connected yet. */
    const matchedAudio = () =>
      Promise.all(
        monitorIds.map(async (id) => {
          const res = await fetch(`${server.url}/api/v1/monitoring/live-streams/${id}`, { headers: admin });
          return res.ok ? ((await res.json()) as { audio_s: number }).audio_s : 0;
        }),
      );
    // Live sources: paced at real time, each frame sent once heard, in the frames the server advises.
    const monitoring = Promise.all(monitored.map((t, i) => identifySamples(new URL(server.url), t.samples.slice(0, MONITOR_S * RATE), RATE, { full: true, realtime: true, clientId: monitorIds[i] })));
    while (!(await matchedAudio()).every((s) => s >= WINDOW_S + 1)) await new Promise((r) => setTimeout(r, 100));
    let audioAtStart = 0;
    const [monitorCpuS] = await cpuDuring([runtime], async () => {
      audioAtStart = (await matchedAudio()).reduce((a, b) => a + b, 0);
      await monitoring;
    });
    const monitorMatches = (await monitoring).filter((r) => r.match).length;
    const pastWindowAudioS = monitored.length * MONITOR_S - audioAtStart;
    const pastWindowMs = (1000 * monitorCpuS) / pastWindowAudioS;
    const steadyCpuS = runtimeCpuS - e2eQueries * connectionCpuS;
    // Null where /proc cannot say which process is the runtime.
    const measured = (v: number) => (runtime.length ? v : null);
    const perAudio = (cpuS: number) => measured((1000 * cpuS) / (e2eQueries * QUERY_S));
    const e2e = {
      ingest_json_x_realtime: jsonAudio / jsonWall,
      ingest_wav_x_realtime: wavAudio / wavWall,
      queries: e2eQueries,
      top1: e2eOk / e2eQueries,
      first_match_p50_s: percentile(e2eTimes, 50),
      first_match_p90_s: percentile(e2eTimes, 90),
      lookup_ms_per_audio_s_p50: percentile(e2eWallPerAudio, 50),
      lookup_x_realtime: 1000 / percentile(e2eWallPerAudio, 50),
      runtime_cpu_ms_per_audio_s: perAudio(runtimeCpuS),
      runtime_cpu_x_realtime: runtimeCpuS > 0 ? measured((e2eQueries * QUERY_S) / runtimeCpuS) : null,
      dev_proxy_cpu_ms_per_audio_s: perAudio(e2eCpuS - runtimeCpuS),
      catalog_rows: catalogRows,
      first_query_runtime_cpu_ms: measured(1000 * firstQueryCpuS),
      connection_runtime_cpu_ms: measured(1000 * connectionCpuS),
      runtime_cpu_ms_per_audio_s_beyond_connection: measured((1000 * steadyCpuS) / (e2eQueries * (QUERY_S - CONNECT_AUDIO_S))),
      monitoring: {
        streams: monitored.length,
        matches: monitorMatches,
        audio_s_measured: pastWindowAudioS,
        past_window_runtime_cpu_ms_per_audio_s: measured(pastWindowMs),
        past_window_x_realtime: measured(1000 / pastWindowMs),
      },
    };
    results.end_to_end = e2e;
    console.log('\nend to end on the local runtime (workerd, 4 catalog shards):');
    console.log(`  ingestion, fingerprints uploaded by the CLI: ${fmt(e2e.ingest_json_x_realtime, 0)}× real time (wall clock, ${subset.length} tracks)`);
    console.log(`  ingestion, WAV bodies fingerprinted by the worker: ${fmt(e2e.ingest_wav_x_realtime, 0)}× real time (wall clock, 5 tracks)`);
    console.log(`  live queries (10 dB SNR, streamed faster than real time): top-1 ${e2eOk}/${e2eQueries}, first match p50 ${fmt(e2e.first_match_p50_s)} s, p90 ${fmt(e2e.first_match_p90_s)} s`);
    console.log(`  lookup through the MatchStream object: ${fmt(e2e.lookup_ms_per_audio_s_p50, 1)} ms wall per second of audio (p50) = ${fmt(e2e.lookup_x_realtime, 0)}× real time`);
    if (e2e.runtime_cpu_x_realtime !== null) {
      console.log(`  first query after ingestion (1 s of audio; the shards read their ${catalogRows} rows into memory): ${fmt(e2e.first_query_runtime_cpu_ms!, 0)} ms runtime CPU`);
      console.log(`  runtime CPU over those queries (worker, MatchStream, shards, registry): ${fmt(e2e.runtime_cpu_ms_per_audio_s!, 1)} ms per second of audio = ${fmt(e2e.runtime_cpu_x_realtime, 0)}× real time per core; wrangler dev's proxy in front of it another ${fmt(e2e.dev_proxy_cpu_ms_per_audio_s!, 1)} ms`);
      const beyond = e2e.runtime_cpu_ms_per_audio_s_beyond_connection!;
      console.log(`    of which each connection, whatever it streams: ${fmt(e2e.connection_runtime_cpu_ms!, 1)} ms (10 of ${CONNECT_AUDIO_S} s); beyond that ${fmt(beyond, 1)} ms per second of audio = ${fmt(1000 / beyond, 0)}× real time per core`);
      const mon = e2e.monitoring;
      console.log(`  monitoring, ${mon.streams} streams of music outside the catalog at once, paced at real time: ${mon.matches} matches; past their first ${WINDOW_S} s, runtime CPU ${fmt(mon.past_window_runtime_cpu_ms_per_audio_s!, 1)} ms per second of audio = ${fmt(mon.past_window_x_realtime!, 0)}× real time per core (${fmt(mon.audio_s_measured, 0)} s of audio)`);
    }
  } finally {
    await server.stop();
  }

  // Baseline in the same run: the same traffic to bench/support/bare-sink, a Durable Object that
  // only reads the frames. What the runtime costs to carry a match stream at all; roomtone's own
  // cost is the difference.
  const e2e = results.end_to_end as Record<string, unknown> & { monitoring: Record<string, unknown> };
  const { streamToSink } = await import('./support/bare-stream.ts');
  const sink = await startLocalServer({ project: new URL('./support/bare-sink', import.meta.url).pathname });
  try {
    const runtime = procAvailable() ? descendants(sink.process.pid!, 'workerd').filter(runsWorker) : [];
    if (runtime.length) {
      const clipFrameS = maxMatchFrameS(RATE, 'f32');
      const clips = catalog.slice(0, 10).flatMap((t) => [t.samples.subarray(0, QUERY_S * RATE), t.samples.subarray(QUERY_S * RATE, 2 * QUERY_S * RATE)]);
      await streamToSink(sink.url, 'warm', clips[0], RATE, { frameS: () => clipFrameS, realtime: false });
      const [clipsCpuS] = await cpuDuring([runtime], async () => {
        for (const [i, q] of clips.entries()) await streamToSink(sink.url, `clip-${i}`, q, RATE, { frameS: () => clipFrameS, realtime: false });
      });
      // A stream outside the catalog is advised half-second frames for its first vote window, then 2 s ones.
      const WINDOW_S = MATCH_PRESETS.default.windowS;
      const advised = (sentS: number) => (sentS < WINDOW_S ? MATCH_BATCH_S : 2);
      const live = negatives.filter((t) => t.samples.length >= 40 * RATE).slice(0, 4);
      const streams = Promise.all(live.map((t, i) => streamToSink(sink.url, `live-${i}`, t.samples.slice(0, 40 * RATE), RATE, { frameS: advised, realtime: true })));
      await new Promise((r) => setTimeout(r, (WINDOW_S + 1) * 1000));
      const [liveCpuS] = await cpuDuring([runtime], () => streams);
      const floor = { clips_cpu_ms_per_audio_s: (1000 * clipsCpuS) / (clips.length * QUERY_S), monitored_cpu_ms_per_audio_s: (1000 * liveCpuS) / (live.length * (40 - WINDOW_S - 1)) };
      e2e.bare_sink_floor = floor;
      const q = e2e.runtime_cpu_ms_per_audio_s as number | null;
      const mon = e2e.monitoring.past_window_runtime_cpu_ms_per_audio_s as number | null;
      console.log('\nbaseline in the same run: the same traffic to a Durable Object that only reads the frames (bench/support/bare-sink):');
      console.log(`  ${clips.length} clips of ${QUERY_S} s at once, ${fmt(clipFrameS, 1)} s frames, a connection each: ${fmt(floor.clips_cpu_ms_per_audio_s, 2)} ms runtime CPU per second of audio${q ? `; roomtone's queries cost ${fmt(q / floor.clips_cpu_ms_per_audio_s, 1)}× that, ${fmt(q - floor.clips_cpu_ms_per_audio_s, 2)} ms more = ${fmt(1000 / (q - floor.clips_cpu_ms_per_audio_s), 0)}× real time for identification itself` : ''}`);
      console.log(`  ${live.length} live streams, paced, in the frames a stream outside the catalog is advised, past ${WINDOW_S + 1} s: ${fmt(floor.monitored_cpu_ms_per_audio_s, 2)} ms${mon ? `; roomtone's monitored streams cost ${fmt(mon / floor.monitored_cpu_ms_per_audio_s, 1)}× that, ${fmt(mon - floor.monitored_cpu_ms_per_audio_s, 2)} ms more = ${fmt(1000 / (mon - floor.monitored_cpu_ms_per_audio_s), 0)}× real time` : ''}`);
    }
  } finally {
    await sink.stop();
  }
}

mkdirSync('bench/out', { recursive: true });
writeFileSync('bench/out/match.json', JSON.stringify(results, null, 2));
console.log('\nwrote bench/out/match.json');
