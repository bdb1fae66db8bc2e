// The offset voter's per-alignment state, one entry per vote key (an integer
// below 2^53): the votes cast exactly at the key, and how many warm keys lie
// near it (see OffsetVoter). Both live in one slot, so the common vote — a
// chance vote near nothing warm — costs one probe of one table, not one of
// each.
//
// A slot is four int32s (key low word, key high word + 1, votes, near), so a
// probe reads one cache line; high word + 1 = 0 marks an empty slot. Linear
// probing with backward-shift deletion: no tombstones pile up as the sliding
// window evicts old votes. An entry is removed when both counts are 0.

import { TWO_32, highWord, lowWord, mixWords } from './key-words.ts';

const STRIDE = 4;

export class AlignTable {
  private slots: Int32Array;
  private mask: number;
  /** Keys with votes or near-warm neighbours. */
  size = 0;
  /** The near-warm count of the key of the last `addVotes`. */
  lastNear = 0;
  /** Counts the edits: equal before and after, the table is unchanged. */
  edits = 0;

  constructor(capacity = 1 << 14) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, capacity)));
    this.slots = new Int32Array(cap * STRIDE);
    this.mask = cap - 1;
  }

  private static home(lo: number, hi: number, mask: number): number {
    return mixWords(lo, hi) & mask;
  }

  /** The slot (index of its first int) holding the key, or the empty slot where it would go. */
  private find(lo: number, hi1: number): number {
    const s = this.slots;
    const mask = this.mask;
    let i = AlignTable.home(lo, hi1 - 1, mask);
    for (;;) {
      const p = i * STRIDE;
      const h = s[p + 1];
      if (h === 0 || (h === hi1 && s[p] === lo)) return p;
      i = (i + 1) & mask;
    }
  }

  private slotOf(key: number): number {
    return this.find(lowWord(key), highWord(key) + 1);
  }

  /** Votes exactly at `key`. */
  votes(key: number): number {
    const p = this.slotOf(key);
    return this.slots[p + 1] === 0 ? 0 : this.slots[p + 2];
  }

  /** Warm keys within twice the tolerance of `key`. */
  near(key: number): number {
    const p = this.slotOf(key);
    return this.slots[p + 1] === 0 ? 0 : this.slots[p + 3];
  }

  /** Adds `delta` to the key's votes; returns them, and leaves the key's near count in `lastNear`. */
  addVotes(key: number, delta: number): number {
    return this.addAt(key, delta, 2);
  }

  /** Adds `delta` to the key's near-warm count; returns it. */
  addNear(key: number, delta: number): number {
    return this.addAt(key, delta, 3);
  }

  private addAt(key: number, delta: number, field: number): number {
    this.edits++;
    if (delta > 0 && (this.size + 1) * 2 > this.mask + 1) this.grow();
    const lo = lowWord(key);
    const hi1 = highWord(key) + 1;
    const p = this.find(lo, hi1);
    const s = this.slots;
    if (s[p + 1] === 0) {
      this.lastNear = 0;
      if (delta <= 0) return 0;
      s[p] = lo;
      s[p + 1] = hi1;
      s[p + 2] = 0;
      s[p + 3] = 0;
      s[p + field] = delta;
      this.size++;
      return delta;
    }
    let c = s[p + field] + delta;
    if (c < 0) c = 0;
    s[p + field] = c;
    this.lastNear = s[p + 3];
    if (s[p + 2] === 0 && s[p + 3] === 0) this.remove(p);
    return c;
  }

  private remove(slot: number): void {
    const s = this.slots;
    const mask = this.mask;
    let i = slot / STRIDE;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const q = j * STRIDE;
      if (s[q + 1] === 0) break;
      const h = AlignTable.home(s[q], s[q + 1] - 1, mask);
      // Move j back to i unless its home slot h lies cyclically in (i, j].
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (!stays) {
        const p = i * STRIDE;
        s[p] = s[q];
        s[p + 1] = s[q + 1];
        s[p + 2] = s[q + 2];
        s[p + 3] = s[q + 3];
        i = j;
      }
    }
    s[i * STRIDE + 1] = 0;
    this.size--;
  }

  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.slots = new Int32Array(cap * STRIDE);
    this.mask = cap - 1;
    for (let p = 0; p < old.length; p += STRIDE) {
      if (old[p + 1] === 0) continue;
      const q = this.find(old[p], old[p + 1]);
      this.slots[q] = old[p];
      this.slots[q + 1] = old[p + 1];
      this.slots[q + 2] = old[p + 2];
      this.slots[q + 3] = old[p + 3];
    }
  }

  /** Slots, for a scan with `votesAt` and `keyAt`. */
  get capacity(): number {
    return this.mask + 1;
  }

  /** The votes in a slot, 0 when the slot is empty. */
  votesAt(slot: number): number {
    const p = slot * STRIDE;
    return this.slots[p + 1] === 0 ? 0 : this.slots[p + 2];
  }

  keyAt(slot: number): number {
    const p = slot * STRIDE;
    return (this.slots[p + 1] - 1) * TWO_32 + (this.slots[p] >>> 0);
  }

  clear(): void {
    this.edits++;
    this.slots.fill(0);
    this.size = 0;
  }
}
