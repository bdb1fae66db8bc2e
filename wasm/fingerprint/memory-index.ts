// A catalog held in memory: each shard's copy of its rows, the reference the
// shards are tested against, and the benchmark's index. Edits go to a Map of
// posting lists, or are merged straight into the packed copy
// (`insertUnique`, `remove`); lookups read the packed copy, built on the
// first lookup after a Map edit, because a Map of arrays costs several cache
// misses per hash (bucket, key, array, elements) and a live query looks up
// ~1,600 hashes per second of audio.
import type { IndexRows } from './matcher.ts';

/** Hashes up to this bound are addressed directly (4 bytes per possible hash); larger ones by binary search. */
const DIRECT_LIMIT = 1 << 23;
const BUCKET_BITS = 16;

interface Packed {
  /** Distinct hashes, ascending. */
  hashes: Uint32Array;
  /** Rows of hashes[i] are first[i] … first[i + 1] − 1. */
  first: Uint32Array;
  /** When every hash is below DIRECT_LIMIT: rows of hash h are direct[h] … direct[h + 1] − 1. */
  direct: Uint32Array | null;
  /**
   * Without the direct table: the hashes whose top bits (h >>> shift) are b
   * are hashes[buckets[b]] … hashes[buckets[b + 1] − 1], so a lookup's binary
   * search covers a bucket, not the whole index.
   */
  buckets: Uint32Array | null;
  shift: number;
  /** (track, time) of each row, interleaved: a posting list is one run of memory. */
  rows: Int32Array;
}

export interface MemoryIndexOptions {
  /**
   * Address hashes directly (one table entry per possible hash, 16 MB for
   * the default layout) rather than by binary search: the faster lookup,
   * for a process that holds one index. Default true.
   */
  directTable?: boolean;
}

/** Catalog rows as a lookup answers them: typed arrays, which an RPC copies whole. */
export interface PackedRows {
  hashes: Uint32Array;
  tracks: Int32Array;
  times: Int32Array;
}

export class MemoryIndex {
  /**
   * The editable form; dropped once packed, and rebuilt from the packed copy
   * by the next edit. Held alongside the packed copy, its million small
   * arrays made every full garbage collection of a process hosting a
   * catalog mark them all (~100 ms each in the benchmark).
   */
  private table: Map<number, number[]> | null = new Map();
  private entries = 0;
  private packed: Packed | null = null;
  /** Per-lookup scratch (the posting lists found), grown to the largest lookup so far. */
  private starts = new Uint32Array(256);
  private ends = new Uint32Array(256);
  private keys = new Uint32Array(256);
  private readonly span2 = new Uint32Array(2);
  /** Sink for the loads that only warm the cache. */
  private touched = 0;
  private readonly directTable: boolean;

  constructor(opts: MemoryIndexOptions = {}) {
    this.directTable = opts.directTable ?? true;
  }

  /**
   * An index of `rows` grouped by hash in ascending order (as a table keyed
   * by hash reads them), packed directly: no map of posting lists in between.
   */
  static fromSortedRows(rows: IndexRows, opts: MemoryIndexOptions = {}): MemoryIndex {
    const index = new MemoryIndex(opts);
    const n = rows.hashes.length;
    let distinct = 0;
    for (let r = 0; r < n; r++) {
      if (r > 0 && rows.hashes[r] < rows.hashes[r - 1]) throw new RangeError('rows must be grouped by hash in ascending order');
      if (r === 0 || rows.hashes[r] !== rows.hashes[r - 1]) distinct++;
    }
    const hashes = new Uint32Array(distinct);
    const first = new Uint32Array(distinct + 1);
    const packed = new Int32Array(2 * n);
    for (let r = 0, i = -1; r < n; r++) {
      if (r === 0 || rows.hashes[r] !== rows.hashes[r - 1]) {
        hashes[++i] = rows.hashes[r];
        first[i] = r;
      }
      packed[2 * r] = rows.tracks[r];
      packed[2 * r + 1] = rows.times[r];
    }
    first[distinct] = n;
    index.table = null;
    index.entries = n;
    index.packed = index.packedOf(hashes, first, packed);
    return index;
  }

  add(track: number, hashes: ArrayLike<number>, times: ArrayLike<number>): void {
    const table = this.editable();
    for (let i = 0; i < hashes.length; i++) {
      let list = table.get(hashes[i]);
      if (!list) table.set(hashes[i], (list = []));
      list.push(track, times[i]);
    }
    this.entries += hashes.length;
    this.packed = null;
  }

  remove(track: number): void {
    if (!this.table) {
      this.removePacked(track);
      return;
    }
    const table = this.table;
    for (const [h, list] of table) {
      const kept: number[] = [];
      for (let i = 0; i < list.length; i += 2) if (list[i] !== track) kept.push(list[i], list[i + 1]);
      this.entries -= (list.length - kept.length) / 2;
      if (kept.length) table.set(h, kept);
      else table.delete(h);
    }
    this.packed = null;
  }

  /**
   * Adds a track's rows, each (hash, track, time) once, as a table keyed by
   * all three stores them; returns how many were new. The packed copy is
   * merged with the new rows rather than unpacked into a map: linear in the
   * index's size (~75 ms to add a track's 70,000 rows to a million here,
   * where unpacking, adding and packing again took seconds), so an index
   * that serves live lookups can take a new track between two of them.
   */
  insertUnique(track: number, hashes: ArrayLike<number>, times: ArrayLike<number>): number {
    const p = (this.packed ??= this.pack());
    const m = hashes.length;
    const order = new Uint32Array(m);
    for (let i = 0; i < m; i++) order[i] = i;
    order.sort((a, b) => hashes[a] - hashes[b] || times[a] - times[b]);
    // Only a track already present (ingested again) can repeat an old row.
    let present = false;
    for (let r = 0; r < p.rows.length && !present; r += 2) present = p.rows[r] === track;
    const oldHashes = p.hashes;
    const oldFirst = p.first;
    const oldRows = p.rows;
    const hs = new Uint32Array(oldHashes.length + m);
    const first = new Uint32Array(oldHashes.length + m + 1);
    const rows = new Int32Array(oldRows.length + 2 * m);
    let i = 0;
    let d = 0;
    let n = 0;
    // Old hashes i … until − 1 with their rows, copied as blocks: most of the index lies between two new hashes.
    const copyOld = (until: number) => {
      if (until <= i) return;
      const r0 = oldFirst[i];
      const r1 = oldFirst[until];
      rows.set(oldRows.subarray(2 * r0, 2 * r1), 2 * n);
      hs.set(oldHashes.subarray(i, until), d);
      const shift = n - r0;
      for (let k = i; k < until; k++) first[d++] = oldFirst[k] + shift;
      n += r1 - r0;
      i = until;
    };
    for (let j = 0; j < m; ) {
      const h = hashes[order[j]];
      copyOld(lowerBound(oldHashes, h, i, oldHashes.length));
      const start = n;
      if (i < oldHashes.length && oldHashes[i] === h) copyOld(i + 1);
      else {
        hs[d] = h;
        first[d++] = n;
      }
      const oldEnd = n;
      for (let prev = NaN; j < m && hashes[order[j]] === h; j++) {
        const t = times[order[j]];
        if (t === prev) continue;
        prev = t;
        let repeat = false;
        if (present) for (let q = start; q < oldEnd && !repeat; q++) repeat = rows[2 * q] === track && rows[2 * q + 1] === t;
        if (repeat) continue;
        rows[2 * n] = track;
        rows[2 * n + 1] = t;
        n++;
      }
    }
    copyOld(oldHashes.length);
    const added = n - this.entries;
    this.settle(hs, first, rows, d, n);
    return added;
  }

  /** `remove` on the packed copy: filtered in place of an unpacked map. */
  private removePacked(track: number): void {
    const p = this.packed!;
    const hs = new Uint32Array(p.hashes.length);
    const first = new Uint32Array(p.hashes.length + 1);
    const rows = new Int32Array(p.rows.length);
    let d = 0;
    let n = 0;
    for (let i = 0; i < p.hashes.length; i++) {
      const start = n;
      for (let r = p.first[i]; r < p.first[i + 1]; r++) {
        if (p.rows[2 * r] === track) continue;
        rows[2 * n] = p.rows[2 * r];
        rows[2 * n + 1] = p.rows[2 * r + 1];
        n++;
      }
      if (n === start) continue;
      hs[d] = p.hashes[i];
      first[d++] = start;
    }
    this.settle(hs, first, rows, d, n);
  }

  /** Makes the first `d` hashes and `n` rows of arrays sized for the worst case the packed copy. */
  private settle(hs: Uint32Array, first: Uint32Array, rows: Int32Array, d: number, n: number): void {
    first[d] = n;
    this.entries = n;
    this.packed = this.packedOf(hs.slice(0, d), first.slice(0, d + 1), rows.slice(0, 2 * n));
  }

  /** The editable form, unpacked again (rows in the same order) if a lookup packed it. */
  private editable(): Map<number, number[]> {
    if (this.table) return this.table;
    const p = this.packed!;
    const table = new Map<number, number[]>();
    for (let i = 0; i < p.hashes.length; i++) {
      const list: number[] = [];
      for (let r = p.first[i]; r < p.first[i + 1]; r++) list.push(p.rows[2 * r], p.rows[2 * r + 1]);
      table.set(p.hashes[i], list);
    }
    this.table = table;
    this.packed = null;
    return table;
  }

  get size(): number {
    return this.entries;
  }

  private pack(): Packed {
    const table = this.table!;
    const hashes = Uint32Array.from(table.keys()).sort();
    const first = new Uint32Array(hashes.length + 1);
    const rows = new Int32Array(2 * this.entries);
    let n = 0;
    for (let i = 0; i < hashes.length; i++) {
      first[i] = n;
      const list = table.get(hashes[i])!;
      for (let j = 0; j < list.length; j += 2, n++) {
        rows[2 * n] = list[j];
        rows[2 * n + 1] = list[j + 1];
      }
    }
    first[hashes.length] = n;
    this.table = null;
    return this.packedOf(hashes, first, rows);
  }

  private packedOf(hashes: Uint32Array, first: Uint32Array, rows: Int32Array): Packed {
    const direct = this.directFor(hashes, first);
    if (direct || hashes.length === 0) return { hashes, first, direct, buckets: null, shift: 0, rows };
    // 2^16 buckets at most (256 KB): a few hashes each in an index of a million rows.
    const max = hashes[hashes.length - 1];
    const shift = Math.max(0, 32 - Math.clz32(max) - BUCKET_BITS);
    const buckets = new Uint32Array((max >>> shift) + 2);
    let i = 0;
    for (let b = 0; b < buckets.length; b++) {
      while (i < hashes.length && hashes[i] >>> shift < b) i++;
      buckets[b] = i;
    }
    return { hashes, first, direct, buckets, shift, rows };
  }

  private directFor(hashes: Uint32Array, first: Uint32Array): Uint32Array | null {
    const max = hashes.length ? hashes[hashes.length - 1] : 0;
    if (!this.directTable || max >= DIRECT_LIMIT) return null;
    const direct = new Uint32Array(max + 2);
    let i = 0;
    for (let h = 0; h <= max + 1; h++) {
      while (i < hashes.length && hashes[i] < h) i++;
      direct[h] = first[i];
    }
    return direct;
  }

  /** Where the rows of `h` start and end in the packed copy (equal when there are none). */
  private span(p: Packed, h: number, out: Uint32Array): void {
    if (p.direct) {
      if (h + 1 < p.direct.length) {
        out[0] = p.direct[h];
        out[1] = p.direct[h + 1];
      } else out[0] = out[1] = 0;
      return;
    }
    let lo = 0;
    let hi = p.hashes.length;
    if (p.buckets) {
      const b = h >>> p.shift;
      if (b + 1 >= p.buckets.length) {
        out[0] = out[1] = 0;
        return;
      }
      lo = p.buckets[b];
      hi = p.buckets[b + 1];
    }
    lo = lowerBound(p.hashes, h, lo, hi);
    if (lo < p.hashes.length && p.hashes[lo] === h) {
      out[0] = p.first[lo];
      out[1] = p.first[lo + 1];
    } else out[0] = out[1] = 0;
  }

  /** Rows of the given hashes; a hash with more than `maxRows` rows is left out (see MatchConfig.maxRowsPerHash). */
  lookup(hashes: ArrayLike<number>, maxRows = Infinity): PackedRows {
    const p = (this.packed ??= this.pack());
    // Spans first, then copied into arrays of the exact size. Repeats are
    // skipped (cheaply when the hashes come sorted, as the live matcher sends them).
    if (this.starts.length < hashes.length) {
      const size = Math.max(hashes.length, 2 * this.starts.length);
      this.starts = new Uint32Array(size);
      this.ends = new Uint32Array(size);
      this.keys = new Uint32Array(size);
    }
    const { starts, ends, keys } = this;
    const span = this.span2;
    // Every posting list is a cache miss or two in a table of megabytes:
    // reading them all first, with no other work between the loads, lets the
    // misses overlap (the catalog side of AlignTable.touch).
    let touched = 0;
    if (p.direct) {
      const direct = p.direct;
      for (let i = 0; i < hashes.length; i++) {
        const h = hashes[i];
        if (h >= 0 && h + 1 < direct.length) touched ^= direct[h];
      }
    }
    let seen: Set<number> | null = null;
    let lists = 0;
    let rows = 0;
    for (let i = 0; i < hashes.length; i++) {
      const h = hashes[i];
      if (i > 0 && hashes[i - 1] >= h) {
        if (hashes[i - 1] === h) continue;
        if (!seen) seen = new Set(Array.prototype.slice.call(hashes, 0, i));
      }
      if (seen) {
        if (seen.has(h)) continue;
        seen.add(h);
      }
      if (!(h >= 0 && h <= 0xffffffff && Number.isInteger(h))) continue;
      this.span(p, h, span);
      const n = span[1] - span[0];
      if (n === 0 || n > maxRows) continue;
      starts[lists] = span[0];
      ends[lists] = span[1];
      keys[lists] = h;
      lists++;
      rows += n;
    }
    const out = { hashes: new Uint32Array(rows), tracks: new Int32Array(rows), times: new Int32Array(rows) };
    // Element loops: a subarray per posting list would allocate more than the copy costs.
    const packedRows = p.rows;
    for (let i = 0; i < lists; i++) touched ^= packedRows[2 * starts[i]];
    this.touched = touched;
    let n = 0;
    for (let i = 0; i < lists; i++) {
      const h = keys[i];
      for (let r = starts[i]; r < ends[i]; r++, n++) {
        out.hashes[n] = h;
        out.tracks[n] = packedRows[2 * r];
        out.times[n] = packedRows[2 * r + 1];
      }
    }
    return out;
  }
}

/** The first index in `lo` … `hi` of ascending `sorted` whose value is not below `h` (`hi` if none). */
function lowerBound(sorted: Uint32Array, h: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < h) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
