import { describe, expect, it } from 'vitest';
import { numberVar } from './env-vars.ts';

describe('numberVar', () => {
  it('reads a positive number written as a string', () => {
    expect(numberVar('10', 3)).toBe(10);
    expect(numberVar('0.5', 3)).toBe(0.5);
  });

  it('falls back when the setting is missing, not a number, zero or negative', () => {
    for (const v of [undefined, '', 'ten', '0', '-4', 'Infinity', 'NaN']) expect(numberVar(v, 3)).toBe(3);
  });
});
