// Hash matches counted per query anchor and alignment over the last two
// decision steps. One anchor peak pairs with its first few targets, so
// where the query really is the catalog recording the anchor's hashes match
// the same recorded anchor together, all voting for one alignment; a chance
// match is mostly a single hash, alone at its alignment. The offset voter
// uses that to keep chance votes out of its window (MatchConfig.minAnchorMatches).
//
// An anchor's first targets are the next few peaks, so most of its hashes
// arrive within a step or two: the groups of the current and the previous
// step are kept (a step that brings no matches is not counted), in one table
// small enough for the first-level caches. Each entry is stamped with its
// step, and an entry older than the last step counts as an empty slot, so
// the table is never cleared between steps.
// A slot is four int32s: key low word, key high word + 1, the anchor, and
// (step << 16 | votes cast << 8 | matches).

import { highWord, lowWord, mixWords } from './key-words.ts';

const STRIDE = 4;
const STEP_SHIFT = 16;
const STEPS = 1 << (31 - STEP_SHIFT);

export class AnchorGroups {
  private slots: Int32Array;
  private mask: number;
  /** Entries stamped with the last three steps: the live groups, and the previous step's leftovers that still link probe chains. */
  private readonly sizes = new Int32Array(3);
  /** Their sum, kept as they change rather than added up for every match. */
  private held = 0;
  private step = 3;
  /** The slot of the last `add`. */
  private last = 0;

  constructor(capacity = 1 << 12) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, capacity)));
    this.slots = new Int32Array(cap * STRIDE);
    this.mask = cap - 1;
  }

  /** Starts a new step: groups first seen before the last step are forgotten. */
  nextStep(): void {
    if (++this.step === STEPS) {
      // The stamps wrap (every ~55 minutes of 0.1 s steps): start afresh rather than mistake an old entry for a new one.
      this.clear();
      return;
    }
    this.held -= this.sizes[this.step % 3];
    this.sizes[this.step % 3] = 0;
  }

  private static home(lo: number, hi1: number, anchor: number, mask: number): number {
    return mixWords(lo ^ Math.imul(anchor, 0x7feb352d), hi1) & mask;
  }

  /**
   * Counts one more match of `anchor` (an int32 naming a query anchor) at
   * alignment `key`; returns the group's matches in this step and the last,
   * this one included.
   *
   * Linear probing where age frees a slot: an entry of this step or the last
   * is live; one of the step before that is dead but still links the probe
   * chains of the last step's entries, so a search walks past it (and an
   * insert may take it); anything older ends a search, as an empty slot.
   */
  add(key: number, anchor: number): number {
    if ((this.held + 1) * 2 > this.mask + 1) this.grow();
    const lo = lowWord(key);
    const hi1 = highWord(key) + 1;
    const s = this.slots;
    const mask = this.mask;
    const step = this.step;
    let free = -1;
    let i = AnchorGroups.home(lo, hi1, anchor, mask);
    for (;;) {
      const p = i * STRIDE;
      const age = step - (s[p + 3] >>> STEP_SHIFT);
      if (age > 2) {
        if (free < 0) free = p;
        break;
      }
      if (age === 2) {
        if (free < 0) free = p;
      } else if (s[p + 1] === hi1 && s[p] === lo && s[p + 2] === anchor) {
        s[p + 3]++;
        this.last = p;
        return s[p + 3] & 0xff;
      }
      i = (i + 1) & mask;
    }
    const was = s[free + 3] >>> STEP_SHIFT;
    if (step - was === 2) {
      this.sizes[was % 3]--;
      this.held--;
    }
    s[free] = lo;
    s[free + 1] = hi1;
    s[free + 2] = anchor;
    s[free + 3] = (step << STEP_SHIFT) | 1;
    this.sizes[step % 3]++;
    this.held++;
    this.last = free;
    return 1;
  }

  /** Votes already cast for the group of the last `add`. */
  get cast(): number {
    return (this.slots[this.last + 3] >>> 8) & 0xff;
  }

  set cast(n: number) {
    const w = this.slots[this.last + 3];
    this.slots[this.last + 3] = (w & ~0xff00) | (Math.min(n, 0xff) << 8);
  }

  /** Doubles the table, keeping the live entries (this step's and the last's). */
  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    const mask = cap - 1;
    const s = new Int32Array(cap * STRIDE);
    this.held -= this.sizes[(this.step + 1) % 3];
    this.sizes[(this.step + 1) % 3] = 0;
    for (let p = 0; p < old.length; p += STRIDE) {
      if (this.step - (old[p + 3] >>> STEP_SHIFT) > 1) continue;
      let i = AnchorGroups.home(old[p], old[p + 1], old[p + 2], mask);
      while (s[i * STRIDE + 3] !== 0) i = (i + 1) & mask;
      s.set(old.subarray(p, p + STRIDE), i * STRIDE);
    }
    this.slots = s;
    this.mask = mask;
  }

  clear(): void {
    this.slots.fill(0);
    this.sizes.fill(0);
    this.held = 0;
    // Empty slots read as step 0: dead from the third step on.
    this.step = 3;
  }
}
