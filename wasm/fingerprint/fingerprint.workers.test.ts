import { beforeAll, describe, expect, it } from 'vitest';
import type { KissFFT } from '../kissfft.ts';
import { loadKissFFT } from '../kissfft-workerd.ts';
import { addNoise, changeSpeed, telephone } from './test-signals.ts';
import { buildCatalog, excerpt, RATE, streamQuery, type Catalog } from './fingerprint.shared-cases.ts';
import { synthMusic } from './test-signals.ts';

let kiss: KissFFT;
let catalog: Catalog;

beforeAll(async () => {
  kiss = await loadKissFFT();
  catalog = buildCatalog(kiss, 4, 25);
});

describe('landmark fingerprints inside workerd', () => {
  it('identifies clean, noisy, telephone-band and sped-up excerpts with the right offset', async () => {
    const degradations = [(x: Float32Array) => x, (x: Float32Array) => addNoise(x, 5, 3), (x: Float32Array) => telephone(x, RATE), (x: Float32Array) => changeSpeed(x, RATE, 1.03)];
    for (const [i, degrade] of degradations.entries()) {
      const start = 4 + i;
      const { matches } = await streamQuery(kiss, catalog.index, degrade(excerpt(catalog.tracks[i], start, 8)));
      expect(matches[0]?.track).toBe(i + 1);
      expect(Math.abs(matches[0].offsetS - start)).toBeLessThan(0.06);
    }
  });

  it('reports nothing for music that is not in the catalog', async () => {
    expect((await streamQuery(kiss, catalog.index, synthMusic(777, 8, RATE))).matches).toEqual([]);
  });
});
